"""Training samples straight from simulated events, without files or GDAL.

An event of a family (:mod:`training.simulate_families`) or a real image
pair with simulated landslides (:mod:`training.real_backgrounds`) is encoded
as a user's files would hold it (8-bit composite, possibly JPEG-compressed,
or L2A reflectance with or without the +1000 offset), decoded and normalised
over the whole scene by :mod:`model.preprocess` exactly as the plugin does,
and cut into samples in the tile store's format (see :mod:`training.augment`).
This is what :mod:`training.train_generated` trains on, on a machine with
many cores and a GPU but without GDAL or TensorFlow.

What differs from a tile store built by ``build-dataset``: the DEM is the
simulated surface smoothed to a 10-30 m product with noise (no GDAL warp), and
the cloud/snow mask is given to the model for only half of the events (the
other half teaches it that snow and clouds are not landslides).
"""

from __future__ import annotations

import io
from typing import Dict, List, Sequence

import numpy as np
from scipy import ndimage

from model.card import ModelCard
from model.preprocess import (
    RADIOMETRY_8BIT,
    RADIOMETRY_S2_L2A,
    RADIOMETRY_S2_L2A_OFFSET,
    S2_BOA_ADD_OFFSET,
    SceneStatistics,
    image_for_model,
    image_to_reflectance,
)
from model.terrain import HALO_PX

from .real_backgrounds import REAL_BACKGROUNDS, RealBackgroundScene
from .simulate_families import FAMILIES, RandomisedScene, Widenings

ENCODINGS = (RADIOMETRY_8BIT, RADIOMETRY_S2_L2A, RADIOMETRY_S2_L2A_OFFSET)


def draw_scene(kind: str, seed: int, size_px: int, gsd_m: float, pairs=None, widenings: Widenings = Widenings()):
    """A scene of a family, or of ``real_backgrounds`` (needs ``pairs``); ``widenings``: see
    :func:`training.simulate_families.with_dry_grassland` (families only)."""
    if kind == REAL_BACKGROUNDS:
        return RealBackgroundScene(pairs, seed, size_px, gsd_m)
    return RandomisedScene(FAMILIES[kind], seed, size_px, gsd_m, widenings)


def _jpeg(values: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.moveaxis(values, 0, -1)).save(buffer, format="JPEG", quality=int(quality))
    return np.moveaxis(np.asarray(Image.open(io.BytesIO(buffer.getvalue()))), -1, 0)


def encode(reflectance: np.ndarray, radiometry: str, rng: np.random.Generator) -> np.ndarray:
    """Image values as a user's file holds them, float32 (3, H, W)."""
    if radiometry == RADIOMETRY_8BIT:
        top = rng.uniform(0.12, 0.35)  # the analyst's stretch: reflectance shown as white
        gamma = rng.uniform(0.8, 1.25) if rng.random() < 0.4 else 1.0
        values = np.clip(np.round((np.clip(reflectance, 0, None) / top) ** gamma * 254.0) + 1, 1, 255).astype(np.uint8)
        if rng.random() < 0.5:
            values = _jpeg(values, int(rng.integers(35, 92)))
        return values.astype(np.float32)
    offset = S2_BOA_ADD_OFFSET if radiometry == RADIOMETRY_S2_L2A_OFFSET else 0.0
    return np.clip(np.round(reflectance * 10000.0 + offset), 1, 65535).astype(np.float32)


def dem_product(dem: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The simulated surface as a 10-30 m DEM product would give it: smoothed, with noise and striping."""
    factor = int(rng.integers(1, 4))
    smoothed = ndimage.uniform_filter(dem, factor) if factor > 1 else dem
    noise = rng.uniform(0.0, 2.0) * ndimage.gaussian_filter(rng.standard_normal(dem.shape), 1.5)
    return (smoothed + noise).astype(np.float32)


def event_layers(kind: str, seed: int, card: ModelCard, size_px: int = 512, pairs=None,
                 widenings: Widenings = Widenings()) -> Dict[str, np.ndarray]:
    """One event as the plugin would see it: normalised 8-bit pre/post, DEM, label, validity."""
    rng = np.random.default_rng([seed, 23])
    scene = draw_scene(kind, seed, size_px, card.gsd_m, pairs, widenings)
    layers = scene.render()
    radiometry = ENCODINGS[rng.integers(len(ENCODINGS))]
    analyst_mask = rng.random() < 0.5
    masked = layers["cloud_mask"] if analyst_mask else np.zeros_like(layers["cloud_mask"])
    images = {}
    for which in ("pre", "post"):
        raw = encode(layers[which], radiometry, rng)
        valid = layers[f"{which}_valid"]
        stats = SceneStatistics()
        stats.add(image_to_reflectance(raw, radiometry), valid & ~masked)
        normaliser = stats.normaliser(card.image_normalisation, f"{which} image")
        images[which] = np.rint(image_for_model(raw, radiometry, card, normaliser)).astype(np.uint8)
    valid = layers["pre_valid"] & layers["post_valid"] & ~masked
    label = layers["event"] & valid
    return {"pre": images["pre"], "post": images["post"], "dem": dem_product(scene.dem, rng),
            "mask": label, "valid": valid, "kind": kind, "radiometry": radiometry}


def cut_samples(layers: Dict[str, np.ndarray], tile_px: int, count: int, rng: np.random.Generator,
                positive_share: float = 0.6) -> List[Dict[str, np.ndarray]]:
    """Random tiles in the tile store's format; ``positive_share`` of them centred near landslide pixels."""
    rows, cols = layers["mask"].shape
    dem = np.pad(layers["dem"], HALO_PX, constant_values=np.nan)
    positives = np.flatnonzero(layers["mask"])
    samples = []
    for _ in range(count):
        if len(positives) and rng.random() < positive_share:
            centre = np.unravel_index(positives[rng.integers(len(positives))], (rows, cols))
            r = int(np.clip(centre[0] - tile_px // 2 + rng.integers(-tile_px // 4, tile_px // 4 + 1), 0, rows - tile_px))
            c = int(np.clip(centre[1] - tile_px // 2 + rng.integers(-tile_px // 4, tile_px // 4 + 1), 0, cols - tile_px))
        else:
            r, c = int(rng.integers(0, rows - tile_px + 1)), int(rng.integers(0, cols - tile_px + 1))
        window = (slice(r, r + tile_px), slice(c, c + tile_px))
        samples.append({
            "pre": np.ascontiguousarray(np.moveaxis(layers["pre"][(slice(None),) + window], 0, -1)),
            "post": np.ascontiguousarray(np.moveaxis(layers["post"][(slice(None),) + window], 0, -1)),
            "dem": dem[r:r + tile_px + 2 * HALO_PX, c:c + tile_px + 2 * HALO_PX].copy(),
            "mask": layers["mask"][window].astype(np.uint8),
            "valid": layers["valid"][window].astype(np.uint8),
        })
    return samples


def kinds_cycle(kinds: Sequence[str], seed: int) -> str:
    """The kind of event ``seed`` draws: the kinds in turn."""
    return kinds[seed % len(kinds)]

