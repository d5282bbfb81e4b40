"""From raw input values to the tensors a carded model expects.

The plugin and the trainer both call these functions, so images, terrain and
validity are prepared one way only.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
from osgeo import gdal

from .card import ROLE_POST_IMAGE, ROLE_PRE_IMAGE, ROLE_TERRAIN, InputSpec, ModelCard
from .errors import InputDataError

RADIOMETRY_AUTO = "auto"
RADIOMETRY_8BIT = "8bit"
RADIOMETRY_S2_L2A = "s2_l2a"
RADIOMETRY_S2_L2A_OFFSET = "s2_l2a_offset"
RADIOMETRIES = (RADIOMETRY_AUTO, RADIOMETRY_8BIT, RADIOMETRY_S2_L2A, RADIOMETRY_S2_L2A_OFFSET)
"""How image values are encoded: 8-bit RGB, Sentinel-2 L2A reflectance x 10000,
or the same with the +1000 offset of processing baseline 04.00 and later."""

S2_BOA_ADD_OFFSET = 1000.0


def resolve_radiometry(radiometry: str, gdal_data_type: int) -> str:
    """Resolve ``auto``: Byte images are 8-bit, anything else L2A reflectance."""
    if radiometry not in RADIOMETRIES:
        raise InputDataError(f"Unknown image radiometry '{radiometry}'; use one of {', '.join(RADIOMETRIES)}.")
    if radiometry != RADIOMETRY_AUTO:
        return radiometry
    return RADIOMETRY_8BIT if gdal_data_type == gdal.GDT_Byte else RADIOMETRY_S2_L2A


def image_to_8bit(values: np.ndarray, radiometry: str, reflectance_saturation: float) -> np.ndarray:
    """Image values as 8-bit-equivalent floats in 0..255.

    Sentinel-2 L2A reflectance becomes a true-colour composite as in ESA's
    TCI product: ``reflectance_saturation`` (2000 = 0.2 reflectance) maps to 255.
    """
    if radiometry == RADIOMETRY_8BIT:
        return np.clip(values, 0.0, 255.0)
    offset = S2_BOA_ADD_OFFSET if radiometry == RADIOMETRY_S2_L2A_OFFSET else 0.0
    return np.clip((values - offset) * (255.0 / reflectance_saturation), 0.0, 255.0)


def scale_channels(raw: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Apply the card's per-channel ``raw * scale + offset`` to a (C, H, W) array."""
    scale = np.array([c.scale for c in spec.channels], dtype=np.float32)[:, None, None]
    offset = np.array([c.offset for c in spec.channels], dtype=np.float32)[:, None, None]
    return raw.astype(np.float32) * scale + offset


def model_inputs(
    pre_8bit: np.ndarray,
    post_8bit: np.ndarray,
    hillshade: np.ndarray,
    slope: np.ndarray,
    valid: np.ndarray,
    card: ModelCard,
) -> Dict[str, np.ndarray]:
    """Model-scaled HWC arrays for one window, keyed by role.

    Args:
        pre_8bit: Pre image (3, H, W), 8-bit-equivalent values.
        post_8bit: Post image (3, H, W), 8-bit-equivalent values.
        hillshade: (H, W), 0..255.
        slope: (H, W), degrees.
        valid: (H, W) bool; invalid pixels are set to 0 in every input
            (the centre of the scaled range) so NaN never reaches the network.
        card: The model card.
    """
    valid = np.asarray(valid, dtype=bool)
    raws = {
        ROLE_PRE_IMAGE: pre_8bit,
        ROLE_POST_IMAGE: post_8bit,
        ROLE_TERRAIN: np.stack([hillshade, slope]),
    }
    out = {}
    for role, raw in raws.items():
        scaled = scale_channels(raw, card.input_for_role(role))
        scaled[:, ~valid] = 0.0
        out[role] = np.ascontiguousarray(np.moveaxis(scaled, 0, -1))
    return out
