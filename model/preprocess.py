"""From raw input values to the tensors a carded model expects.

The plugin and the trainer both call these functions, so images, terrain and
validity are prepared one way only.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import numpy as np

from .card import (
    NORMALISATION_NONE,
    ROLE_POST_IMAGE,
    ROLE_PRE_IMAGE,
    ROLE_TERRAIN,
    ImageNormalisation,
    InputSpec,
    ModelCard,
)
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
    from osgeo import gdal  # the trainer's device runs have no GDAL; only this needs it

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


def image_to_reflectance(values: np.ndarray, radiometry: str) -> np.ndarray:
    """Image values as reflectance-like floats: L2A reflectance, or 8-bit values / 255.

    Unlike :func:`image_to_8bit` nothing saturates, so the scene statistics of
    :class:`SceneStatistics` see bright scars, snow and cloud as they are.
    """
    values = np.asarray(values, dtype=np.float32)
    if radiometry == RADIOMETRY_8BIT:
        return values / np.float32(255.0)
    offset = S2_BOA_ADD_OFFSET if radiometry == RADIOMETRY_S2_L2A_OFFSET else 0.0
    return (values - np.float32(offset)) / np.float32(10000.0)


HISTOGRAM_MAX_REFLECTANCE = 1.6
HISTOGRAM_BINS = 8000  # 0.0002 reflectance per bin, 2 DN of L2A


class SceneStatistics:
    """Per-band quantiles of one image over the valid pixels of a whole event, in bounded memory.

    Windows are added one by one (:meth:`add`); only a fixed histogram per band
    is kept, so memory does not grow with the scene. The plugin adds the
    windows of its grid; the trainer adds a whole simulated scene at once.
    Both then call :func:`normalise_image` with the same numbers.
    """

    def __init__(self, bands: int = 3):
        self.counts = np.zeros((bands, HISTOGRAM_BINS), dtype=np.int64)

    @property
    def valid_pixels(self) -> int:
        return int(self.counts[0].sum())

    def add(self, reflectance: np.ndarray, valid: np.ndarray) -> None:
        """Count the valid pixels of a (bands, H, W) reflectance window."""
        valid = np.asarray(valid, dtype=bool) & np.isfinite(reflectance).all(axis=0)
        if not valid.any():
            return
        for band, values in enumerate(reflectance):
            index = np.clip(values[valid] * (HISTOGRAM_BINS / HISTOGRAM_MAX_REFLECTANCE), 0, HISTOGRAM_BINS - 1)
            self.counts[band] += np.bincount(index.astype(np.int64), minlength=HISTOGRAM_BINS)

    def quantiles(self, q: float) -> np.ndarray:
        """The ``q`` quantile of each band (bin centres), in reflectance."""
        cumulative = np.cumsum(self.counts, axis=1)
        total = cumulative[:, -1:]
        index = (cumulative < q * total).sum(axis=1)
        return (np.minimum(index, HISTOGRAM_BINS - 1) + 0.5) * (HISTOGRAM_MAX_REFLECTANCE / HISTOGRAM_BINS)

    def normaliser(self, spec: ImageNormalisation, what: str) -> Tuple[np.ndarray, np.ndarray]:
        """Per-band ``(dark, reference)`` reflectances; refuse an image with too few valid pixels."""
        if self.valid_pixels < spec.min_valid_pixels:
            raise InputDataError(
                f"The {what} has only {self.valid_pixels} valid pixels on the model grid (outside nodata and the "
                f"cloud/snow mask); the model's scene normalisation needs at least {spec.min_valid_pixels}. "
                "Choose a larger extent or a clearer image."
            )
        dark = self.quantiles(spec.dark_quantile)
        reference = self.quantiles(spec.reference_quantile)
        floor = 0.002  # 20 DN of L2A: a uniform, hazy scene is not stretched into noise
        return dark, np.maximum(reference, dark + floor)


def normalise_image(reflectance: np.ndarray, normaliser: Tuple[np.ndarray, np.ndarray],
                    spec: ImageNormalisation) -> np.ndarray:
    """A (3, H, W) reflectance window as normalised 8-bit-equivalent values (see :class:`ImageNormalisation`)."""
    dark, reference = (np.asarray(a, dtype=np.float32)[:, None, None] for a in normaliser)
    gain = np.float32(spec.reference_value) / (reference - dark)
    return np.clip((reflectance - dark) * gain, 0.0, 255.0)


Normaliser = Tuple[np.ndarray, np.ndarray]
STATISTICS_WINDOW_PX = 1024


def measure_scene(read_window: Callable[[int, int, int, int], Tuple[np.ndarray, np.ndarray, np.ndarray]],
                  height_px: int, width_px: int, radiometries: Dict[str, str], spec: ImageNormalisation,
                  raise_if_cancelled: Callable[[], None] = lambda: None
                  ) -> Tuple[Dict[str, Normaliser], Dict[str, int]]:
    """The normalisers of the pre and post image over a whole grid, in windows (bounded memory).

    Args:
        read_window: ``(row, col, rows, cols) -> (pre, post, masked)``: raw (3, rows, cols)
            values (NaN = nodata) and a bool mask of the cloud/snow mask.
        height_px, width_px: The grid.
        radiometries: ``{"pre": ..., "post": ...}`` resolved radiometries.
        spec: The card's normalisation.
        raise_if_cancelled: Called before each window.

    Returns:
        ``(normalisers, valid_pixels)``, each keyed ``pre`` and ``post``.
    """
    stats = {"pre": SceneStatistics(), "post": SceneStatistics()}
    step = STATISTICS_WINDOW_PX
    for row in range(0, height_px, step):
        for col in range(0, width_px, step):
            raise_if_cancelled()
            rows, cols = min(step, height_px - row), min(step, width_px - col)
            pre, post, masked = read_window(row, col, rows, cols)
            for which, raw in (("pre", pre), ("post", post)):
                stats[which].add(image_to_reflectance(raw, radiometries[which]), ~masked)
    labels = {"pre": "pre-event image", "post": "post-event image"}
    normalisers = {which: stats[which].normaliser(spec, labels[which]) for which in stats}
    return normalisers, {which: stats[which].valid_pixels for which in stats}


def describe_normaliser(label: str, normaliser: Normaliser, valid_pixels: int) -> str:
    """One log line on an image's normalisation."""
    dark, reference = normaliser
    return (f"Scene normalisation of the {label} (R, G, B reflectance): dark {', '.join(f'{v:.3f}' for v in dark)}; "
            f"typical surface {', '.join(f'{v:.3f}' for v in reference)} ({valid_pixels} valid pixels).")


def image_for_spec(values: np.ndarray, radiometry: str, spec: ImageNormalisation, reflectance_saturation: float,
                   normaliser: Optional[Normaliser] = None) -> np.ndarray:
    """Raw image values as the 8-bit-equivalent values a card's scaling takes (see :func:`image_for_model`)."""
    if spec.method == NORMALISATION_NONE:
        return image_to_8bit(values, radiometry, reflectance_saturation)
    if normaliser is None:
        raise InputDataError("This model normalises each image over the whole scene; no scene statistics were given.")
    return normalise_image(image_to_reflectance(values, radiometry), normaliser, spec)


def image_for_model(values: np.ndarray, radiometry: str, card: ModelCard,
                    normaliser: Optional[Normaliser] = None) -> np.ndarray:
    """Raw image values as the 8-bit-equivalent values the card's scaling takes.

    Cards without scene normalisation use :func:`image_to_8bit`; the others
    need the image's ``normaliser`` from :class:`SceneStatistics` (for a whole
    grid: :func:`measure_scene`).
    """
    return image_for_spec(values, radiometry, card.image_normalisation, card.reflectance_saturation, normaliser)


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
