"""Real Sentinel-2 image pairs as backgrounds into which simulated landslides are rendered.

The pairs are the OSCD crops described in ``../shared/data/oscd_s2_pairs/README.md``
(Copernicus Sentinel-2 L1C, "Contains modified Copernicus Sentinel data
2015-2018"; Onera Satellite Change Detection dataset, Daudt, Le Saux, Boulch,
Gousseau, IGARSS 2018; taken from the MIT-licensed repository
ChenHongruixuan/ChangeDetectionRepository). They bring what a simulator draws
badly: real textures, real seasonal and atmospheric differences between two
dates, and real changes that are not landslides. They have no DEM and no
landslides: each event gets a simulated terrain, and landslides drawn on its
steep slopes are rendered into the post image (only there: labels stay exact).
The Hokkaido check scene is never among them.

:func:`pack_pairs` stores the R, G, B bands of every pair in one ``.npz``
(for machines without GDAL); :class:`RealBackgroundScene` renders events.
"""

from __future__ import annotations

import glob
import math
import os
from typing import Dict, List, Tuple

import numpy as np
from scipy import ndimage

from .simulate_families import FAMILIES, draw_look
from .simulate_scene import Scene

DEFAULT_PAIRS_DIR = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "shared", "data", "oscd_s2_pairs")
REAL_BACKGROUNDS = "real_backgrounds"


def pack_pairs(pairs_dir: str, out_path: str) -> List[str]:
    """Write the R, G, B bands (UInt16 TOA reflectance x 10000) of each place's two dates to one ``.npz``."""
    from osgeo import gdal

    arrays = {}
    for place_dir in sorted(glob.glob(os.path.join(pairs_dir, "*"))):
        files = sorted(glob.glob(os.path.join(place_dir, "*_S2L1C_B02B03B04B08.tif")))
        if len(files) != 2:
            continue
        place = os.path.basename(place_dir)
        for index, path in enumerate(files):
            data = gdal.Open(path).ReadAsArray()  # B02, B03, B04, B08
            arrays[f"{place}_{index}"] = data[[2, 1, 0]].astype(np.uint16)
    np.savez_compressed(out_path, **arrays)
    return sorted(arrays)


def load_pairs(npz_path: str) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """``place -> (date 1, date 2)`` reflectance arrays (3, H, W) in 0..1."""
    data = np.load(npz_path)
    places = sorted({key.rsplit("_", 1)[0] for key in data.files})
    return {p: (data[f"{p}_0"].astype(np.float32) / 1e4, data[f"{p}_1"].astype(np.float32) / 1e4) for p in places}


class RealBackgroundScene(Scene):
    """An event rendered into a crop of a real image pair (see the module docstring)."""

    def __init__(self, pairs: Dict[str, Tuple[np.ndarray, np.ndarray]], seed: int, size_px: int, gsd: float):
        rng = np.random.default_rng([seed, 11])
        family = FAMILIES[["forested_mountains", "tropical_hills", "agricultural_hills"][rng.integers(3)]]
        self.look = draw_look(rng, family)
        places = [p for p, (a, _) in pairs.items() if min(a.shape[1:]) >= min(size_px, 200)]
        self.place = places[rng.integers(len(places))]
        first, second = pairs[self.place]
        rows, cols = first.shape[1:]
        size = min(size_px, rows, cols) // 32 * 32  # whole scenes go through the network: multiples of 32
        r0, c0 = int(rng.integers(0, rows - size + 1)), int(rng.integers(0, cols - size + 1))
        crops = [first[:, r0:r0 + size, c0:c0 + size], second[:, r0:r0 + size, c0:c0 + size]]
        if rng.random() < 0.5:
            crops.reverse()
        k = int(rng.integers(4))
        self.images = [np.rot90(c, k, axes=(1, 2)).copy() for c in crops]
        super().__init__(family.draw(rng), seed, size, gsd)
        self.details.update(family=REAL_BACKGROUNDS, place=self.place, crop=[r0, c0, size], rotation=k)

    def render(self) -> Dict[str, np.ndarray]:
        rng, look, shape = self.rng, self.look, self.shape
        pre, post = (image.copy() for image in self.images)
        self.forest_texture = ndimage.gaussian_filter(rng.standard_normal(shape), 0.7)
        self.grass_texture = ndimage.gaussian_filter(rng.standard_normal(shape), 3.0)
        brightness = post.mean(axis=0)
        # neither water (dark) nor bright built-up ground or cloud slides
        allowed = (brightness > np.quantile(brightness, 0.05)) & (brightness < np.quantile(brightness, 0.9))
        if look.swarm_area_fraction < 1.0:
            field_ = ndimage.gaussian_filter(rng.standard_normal(shape), rng.uniform(30, 80))
            allowed &= field_ > np.quantile(field_, 1.0 - look.swarm_area_fraction)
        event = np.zeros(shape, bool)
        count = 0
        for window, inside, t in self.landslide_bodies(look.swarm_per_km2 * look.swarm_area_fraction, allowed,
                                                       self.style.source_slope_deg, int(rng.integers(1, 5)),
                                                       (100.0, look.largest_m2)):
            scar = np.array(look.scar_colour) * rng.uniform(1 - look.scar_brightness_spread, 1 + look.scar_brightness_spread)
            left = rng.uniform(0.0, look.vegetation_left)
            for band in range(3):
                patch = post[band][window]
                body = scar[band] * (1.1 - 0.2 * np.clip(t, 0, 1)) * (1 + 0.15 * self.grass_texture[window])
                patch[inside] = (1 - left) * body[inside] + left * patch[inside]
            event[window] |= inside
            count += 1
        images = []
        for image, image_look in ((pre, look.pre), (post, look.post)):
            for band, scatter in enumerate((0.45, 0.7, 1.0)):
                image[band] = (image[band] + 0.5 * image_look.path_radiance * scatter) * image_look.gains[band]
            images.append(image + rng.normal(0, 0.5 * image_look.noise, image.shape))
        angle = rng.uniform(0, 2 * np.pi)
        shift = look.misregistration_px * 0.5 * np.array([math.sin(angle), math.cos(angle)])
        images[1] = np.stack([ndimage.shift(b, shift, order=1, mode="nearest") for b in images[1]])
        valid = np.ones(shape, bool)
        self.details.update(event_landslides_drawn=count, landslide_fraction=round(float(event.mean()), 5))
        return {"pre": np.clip(images[0], 0, 1.5), "post": np.clip(images[1], 0, 1.5), "event": event,
                "cloud_mask": np.zeros(shape, bool), "pre_valid": valid, "post_valid": valid.copy()}
