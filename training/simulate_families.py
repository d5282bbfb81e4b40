"""Families of simulated events, randomised per event (domain randomisation).

A *family* is a broad kind of landscape (forested mountains, tropical hills,
farmland, semi-arid ranges, a dissected volcanic plateau). Every event of a
family draws its own terrain and land-cover parameters (a :class:`Style`) and
its own *look* (:class:`Look`): the season of each image (leaf-on, leaf-off,
autumn, dry), snow in gullies or on peaks in one image only, haze, path
radiance and top-of-atmosphere-like offsets, gain, the sun of each image with
terrain shading and cast shadows, noise, blur and misregistration, the colour
of the scars (pale pumice to dark wet soil), deposits, sparse rainfall slides
or dense co-seismic swarms, and changes that are not landslides (harvest,
clear-cuts, construction, quarries, river changes, snow melt, clouds and their
shadows).

Generalisation is measured by leaving whole families out of training
(:data:`HELD_OUT_FAMILIES`), not one style.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np
from scipy import ndimage

from .simulate_scene import (FIELD, FOREST, GRASS, ROCK, URBAN, WATER, Scene, _line_raster, _meander, _polygon_patch,
                             _smooth_noise, add_clouds, swath_edge)
from .simulate_styles import Style

RGB = Tuple[float, float, float]
SEASONS = ("leaf_on", "leaf_off", "autumn", "dry")
SNOW_KINDS = ("none", "peaks", "gullies", "forest_floor")  # forest_floor: only by with_forest_snow

PALE_PUMICE: RGB = (0.32, 0.28, 0.23)
DARK_WET_SOIL: RGB = (0.085, 0.075, 0.062)


@dataclass(frozen=True)
class ImageLook:
    """How one image of the pair was taken."""

    season: str
    snow: str
    sun_azimuth_deg: float
    sun_elevation_deg: float
    path_radiance: float          # reflectance added in blue (less in green, red): haze and Rayleigh
    offsets: RGB                  # top-of-atmosphere-like additive offsets per band
    gains: RGB
    noise: float                  # sensor noise, reflectance
    blur_px: float
    cloud_cover: float


@dataclass(frozen=True)
class Look:
    """The per-event appearance drawn for one event (see the module docstring)."""

    pre: ImageLook
    post: ImageLook
    scar_colour: RGB
    scar_brightness_spread: float
    deposits: bool
    swarm_per_km2: float          # landslide density inside the swarm area
    swarm_area_fraction: float    # share of the scene the swarm covers (1: everywhere)
    largest_m2: float
    vegetation_left: float        # share of the old cover still visible on the scars, at most
    misregistration_px: float
    constructions_per_km2: float
    quarries_per_km2: float
    clearcuts_per_km2: float
    harvest_fraction: float
    cast_shadows: bool


def _draw_image_look(rng: np.random.Generator, family: "Family", season: Optional[str] = None) -> ImageLook:
    seasons = family.seasons
    return ImageLook(
        season=season or seasons[rng.integers(len(seasons))],
        snow="none",
        sun_azimuth_deg=float(rng.uniform(0, 360)),
        sun_elevation_deg=float(rng.uniform(15, 65)),
        path_radiance=float(rng.uniform(0.0, family.max_path_radiance)),
        offsets=tuple(float(v) for v in rng.uniform(-0.01, 0.03, 3) * (rng.random() < 0.5)),
        gains=tuple(float(v) for v in rng.uniform(0.8, 1.2) * rng.uniform(0.93, 1.07, 3)),
        noise=float(rng.uniform(0.001, 0.006)),
        blur_px=float(rng.uniform(0.0, 1.0) if rng.random() < 0.5 else 0.0),
        cloud_cover=float(rng.uniform(*family.cloud_cover) if rng.random() < 0.6 else 0.0),
    )


def draw_look(rng: np.random.Generator, family: "Family") -> Look:
    """Random appearance of one event of ``family``."""
    pre = _draw_image_look(rng, family)
    post = _draw_image_look(rng, family)
    if rng.random() < family.snow_chance:  # snow in one image only (fresh snow, or melted since)
        kind = SNOW_KINDS[1 + rng.integers(2)]
        if rng.random() < 0.6:
            pre = dataclasses.replace(pre, snow=kind)
        else:
            post = dataclasses.replace(post, snow=kind)
    mix = rng.beta(*family.scar_beta)  # 0 dark wet soil .. 1 pale pumice
    scar = tuple(float(d + (p - d) * mix) * rng.uniform(0.9, 1.1) for d, p in zip(DARK_WET_SOIL, PALE_PUMICE))
    dense = rng.random() < family.dense_swarm_chance
    return Look(
        pre=pre,
        post=post,
        scar_colour=scar,
        scar_brightness_spread=float(rng.uniform(0.05, 0.25)),
        deposits=bool(rng.random() < 0.6),
        swarm_per_km2=float(np.exp(rng.uniform(np.log(60), np.log(400))) if dense
                            else np.exp(rng.uniform(np.log(1.5), np.log(25)))),
        swarm_area_fraction=float(rng.uniform(0.1, 0.35) if dense else 1.0),
        largest_m2=float(np.exp(rng.uniform(np.log(2e4), np.log(3e5)))) if not dense else float(rng.uniform(1e4, 6e4)),
        vegetation_left=float(rng.uniform(0.0, 0.35)),
        misregistration_px=float(rng.uniform(0.0, 1.0)),
        constructions_per_km2=float(rng.uniform(0.0, family.max_constructions_per_km2)),
        quarries_per_km2=float(rng.uniform(0.0, 0.3)),
        clearcuts_per_km2=float(rng.uniform(0.0, 2.5)),
        harvest_fraction=float(rng.uniform(0.1, 0.6)),
        cast_shadows=bool(rng.random() < 0.8),
    )


@dataclass(frozen=True)
class Family:
    """A broad kind of landscape; :meth:`draw_style` gives one event's terrain and land cover."""

    name: str
    description: str
    draw: Callable[[np.random.Generator], Style]
    seasons: Tuple[str, ...] = SEASONS
    snow_chance: float = 0.3
    max_path_radiance: float = 0.06
    cloud_cover: Tuple[float, float] = (0.0, 0.12)
    scar_beta: Tuple[float, float] = (2.0, 2.0)
    dense_swarm_chance: float = 0.4
    max_constructions_per_km2: float = 0.5


def _u(rng, low, high):
    return float(rng.uniform(low, high))


def _jitter(rng, rgb: RGB, spread: float = 0.15) -> RGB:
    return tuple(float(v * rng.uniform(1 - spread, 1 + spread)) for v in rgb)


def _forested_mountains(rng) -> Style:
    return Style("forested_mountains", "steep forested ranges", epsg=32633, slope_p90_deg=_u(rng, 30, 45),
                 spectral_exponent=_u(rng, 1.9, 2.3), base_elevation_m=_u(rng, 200, 1500),
                 valley_count=(1, 4), valley_depth=_u(rng, 0.2, 0.45), forest=_jitter(rng, (0.030, 0.050, 0.030)),
                 grass=_jitter(rng, (0.060, 0.085, 0.045)), forest_cover=_u(rng, 0.7, 0.95), field_cover=_u(rng, 0.2, 0.6),
                 treeline_quantile=_u(rng, 0.75, 1.0), snow_quantile=_u(rng, 0.85, 0.97), settlements=int(rng.integers(0, 3)),
                 roads=int(rng.integers(0, 3)), source_slope_deg=_u(rng, 22, 30),
                 soil=_jitter(rng, (0.18, 0.16, 0.13)), rock=_jitter(rng, (0.24, 0.235, 0.22)),
                 old_scars_per_km2=_u(rng, 0, 2), cloud_cover=(0.0, 0.1), haze=(0.0, 0.02))


def _tropical_hills(rng) -> Style:
    return Style("tropical_hills", "lush forested hills, red soils", epsg=32646, slope_p90_deg=_u(rng, 25, 40),
                 spectral_exponent=_u(rng, 2.0, 2.4), base_elevation_m=_u(rng, 50, 800),
                 valley_count=(2, 4), valley_depth=_u(rng, 0.2, 0.4), forest=_jitter(rng, (0.025, 0.062, 0.025)),
                 grass=_jitter(rng, (0.05, 0.10, 0.04)), forest_cover=_u(rng, 0.8, 0.97), field_cover=_u(rng, 0.3, 0.7),
                 settlements=int(rng.integers(1, 4)), roads=int(rng.integers(1, 4)), source_slope_deg=_u(rng, 20, 28),
                 soil=_jitter(rng, (0.21, 0.14, 0.09)), old_scars_per_km2=_u(rng, 0, 3), cloud_cover=(0.03, 0.2),
                 haze=(0.0, 0.04))


def _agricultural_hills(rng) -> Style:
    return Style("agricultural_hills", "rolling farmland with forested slopes", epsg=32632,
                 slope_p90_deg=_u(rng, 15, 28), spectral_exponent=_u(rng, 2.2, 2.6), base_elevation_m=_u(rng, 100, 600),
                 plains_fraction=_u(rng, 0.2, 0.45), valley_count=(1, 2), valley_depth=_u(rng, 0.1, 0.25),
                 forest_cover=_u(rng, 0.5, 0.8), field_cover=_u(rng, 0.6, 0.95), settlements=int(rng.integers(2, 6)),
                 roads=int(rng.integers(2, 6)), source_slope_deg=_u(rng, 16, 22), clearcuts_per_km2=_u(rng, 0.5, 3),
                 soil=_jitter(rng, (0.19, 0.165, 0.13)), old_scars_per_km2=_u(rng, 0, 1))


def _semi_arid_ranges(rng) -> Style:
    grass = _jitter(rng, (0.15, 0.135, 0.10), 0.1)
    return Style("semi_arid_ranges", "sparse shrubs, pale soils, bare rock: low contrast", epsg=32613,
                 slope_p90_deg=_u(rng, 28, 40), spectral_exponent=_u(rng, 1.9, 2.3), base_elevation_m=_u(rng, 800, 2500),
                 plains_fraction=_u(rng, 0.0, 0.25), valley_count=(1, 3), forest=_jitter(rng, (0.07, 0.075, 0.05)),
                 grass=grass, forest_cover=_u(rng, 0.15, 0.4), field_cover=_u(rng, 0.1, 0.4), treeline_quantile=_u(rng, 0.5, 0.8),
                 settlements=int(rng.integers(0, 2)), roads=int(rng.integers(1, 3)), source_slope_deg=_u(rng, 24, 30),
                 soil=tuple(float(g * rng.uniform(1.15, 1.5)) for g in grass), rock=_jitter(rng, (0.30, 0.28, 0.25)),
                 cloud_cover=(0.0, 0.05), haze=(0.0, 0.02))


def _volcanic_plateau(rng) -> Style:
    return Style("volcanic_plateau", "plateau cut by steep valleys, pumice soils, fields on top", epsg=32654,
                 slope_p90_deg=_u(rng, 28, 38), spectral_exponent=_u(rng, 2.1, 2.4), base_elevation_m=_u(rng, 50, 600),
                 plateau_fraction=_u(rng, 0.25, 0.45), valley_count=(3, 6), valley_depth=_u(rng, 0.35, 0.55),
                 forest=_jitter(rng, (0.035, 0.05, 0.035)), forest_cover=_u(rng, 0.7, 0.9), field_cover=_u(rng, 0.5, 0.8),
                 settlements=int(rng.integers(1, 4)), roads=int(rng.integers(2, 4)), source_slope_deg=_u(rng, 20, 26),
                 soil=_jitter(rng, (0.24, 0.21, 0.16)), old_scars_per_km2=_u(rng, 0, 1))


FAMILIES: Dict[str, Family] = {f.name: f for f in (
    Family("forested_mountains", "steep forested ranges, treeline, snow on peaks or in gullies", _forested_mountains,
           snow_chance=0.5),
    Family("tropical_hills", "lush hills, red soils, haze and cloud, rainfall swarms", _tropical_hills,
           seasons=("leaf_on", "dry"), snow_chance=0.0, max_path_radiance=0.09, cloud_cover=(0.03, 0.25),
           scar_beta=(1.5, 2.5)),
    Family("agricultural_hills", "farmland, harvest, construction, forested slopes", _agricultural_hills,
           snow_chance=0.15, dense_swarm_chance=0.2, max_constructions_per_km2=1.5),
    Family("semi_arid_ranges", "sparse shrubs and pale soils: scars of low contrast", _semi_arid_ranges,
           seasons=("dry", "leaf_on"), snow_chance=0.1, cloud_cover=(0.0, 0.05), scar_beta=(2.5, 1.5)),
    Family("volcanic_plateau", "dissected plateau, pumice, dense co-seismic swarms on valley sides", _volcanic_plateau,
           snow_chance=0.4, scar_beta=(3.0, 1.5), dense_swarm_chance=0.7),
)}
HELD_OUT_FAMILIES = ("semi_arid_ranges", "volcanic_plateau")
TRAINING_FAMILIES = tuple(name for name in FAMILIES if name not in HELD_OUT_FAMILIES)


# Pale senescent grass and stubble (R, G, B before the season's change): brighter than most scars, so that a scar
# can be darker than the slope it strips, as dark wet soil on a summer-dry range is.
DRY_GRASS: RGB = (0.12, 0.11, 0.08)


@dataclass(frozen=True)
class Widenings:
    """Training-time widenings of the families: each the share of family events drawn with it (0: never).

    ``dry_grassland``: :func:`with_dry_grassland`; ``forest_snow``: :func:`with_forest_snow`. Each is decided by
    its own random stream of the event's seed, so an event drawn without them is the same as before they existed.
    """

    dry_grassland: float = 0.0
    forest_snow: float = 0.0


def with_dry_grassland(style: Style, rng: np.random.Generator) -> Style:
    """``style`` with pale dry grass and a half to a fifth of its forest: the contrast of a scar can change sign.

    A training-time widening of any family (``python -m training.train_generated --dry-grassland-chance``);
    the families' own events, held out or not, are drawn without it unless asked.
    """
    return dataclasses.replace(style, grass=_jitter(rng, DRY_GRASS, 0.25),
                               forest_cover=float(style.forest_cover * rng.uniform(0.2, 0.5)))


def with_forest_snow(look: Look, rng: np.random.Generator) -> Look:
    """``look`` with a leaf-off winter image holding snow on the ground under the bare forest, most on the slopes
    facing away from the sun and in hollows (``forest_floor`` snow), in the pre image (melted by the event) or,
    a fifth of the time, in the post image.

    A pre-event image is often the last clear winter one: its snow lies in streaks and patches through the bare
    canopy and is gone from the post image, so those slopes darken between the dates without any landslide. The
    families' own snow (``peaks``, ``gullies``) is opaque and bounded; this one is partial. A training-time widening
    (``python -m training.train_generated --forest-snow-chance``); events drawn without it are unchanged.
    """
    which = "pre" if rng.random() < 0.8 else "post"
    image = dataclasses.replace(getattr(look, which), season="leaf_off", snow="forest_floor",
                                sun_elevation_deg=float(rng.uniform(15, 35)))
    return dataclasses.replace(look, **{which: image})


# ----------------------------------------------------------------------------- rendering

SEASON_COLOURS: Dict[str, Dict[str, RGB]] = {
    # multiplicative changes of forest and grass reflectance (R, G, B)
    "leaf_on": {"forest": (1.0, 1.0, 1.0), "grass": (1.0, 1.0, 1.0)},
    "leaf_off": {"forest": (1.9, 1.15, 1.25), "grass": (1.7, 1.15, 1.05)},
    "autumn": {"forest": (2.4, 1.05, 1.0), "grass": (1.5, 1.05, 0.95)},
    "dry": {"forest": (1.3, 1.05, 1.0), "grass": (2.0, 1.5, 1.15)},
}


def cast_shadow(dem: np.ndarray, gsd: float, azimuth_deg: float, elevation_deg: float, max_px: int = 80) -> np.ndarray:
    """Pixels in the shadow of terrain between them and the sun (horizon scan along the sun's azimuth)."""
    az = math.radians(azimuth_deg)
    step_r, step_c = -math.cos(az), math.sin(az)  # towards the sun: north is row -1, east is col +1
    rise = math.tan(math.radians(elevation_deg)) * gsd
    rows, cols = dem.shape
    pad = max_px + 1
    padded = np.pad(dem, pad, mode="edge")
    shadow = np.zeros(dem.shape, bool)
    for k in range(1, max_px + 1):
        dr, dc = int(round(k * step_r)), int(round(k * step_c))
        ahead = padded[pad + dr:pad + dr + rows, pad + dc:pad + dc + cols]
        shadow |= ahead > dem + k * rise
    return shadow


class RandomisedScene(Scene):
    """A :class:`Scene` rendered with a :class:`Look` (see the module docstring)."""

    def __init__(self, family: Family, seed: int, size_px: int, gsd: float, widenings: Widenings = Widenings()):
        rng = np.random.default_rng([seed, 7])
        style = family.draw(rng)
        dry_grassland = widenings.dry_grassland > 0 and np.random.default_rng([seed, 11]).random() < widenings.dry_grassland
        if dry_grassland:
            style = with_dry_grassland(style, np.random.default_rng([seed, 12]))
        super().__init__(style, seed, size_px, gsd)
        self.family = family
        self.look = draw_look(rng, family)
        forest_snow = widenings.forest_snow > 0 and np.random.default_rng([seed, 13]).random() < widenings.forest_snow
        if forest_snow:
            self.look = with_forest_snow(self.look, np.random.default_rng([seed, 14]))
        self.details.update(family=family.name, look=dataclasses.asdict(self.look), dry_grassland=bool(dry_grassland),
                            forest_snow=bool(forest_snow))

    def _season(self, crop: np.ndarray, look: ImageLook) -> np.ndarray:
        image = self._reflectance(crop, 1.0)
        change = SEASON_COLOURS[look.season]
        for cover, key in ((FOREST, "forest"), (GRASS, "grass"), (FIELD, "grass")):
            where = self.cover == cover
            for band in range(3):
                image[band][where] *= change[key][band] if cover != FIELD else 0.5 + 0.5 * change[key][band]
        return image

    def _snow(self, image: np.ndarray, kind: str, look: ImageLook) -> np.ndarray:
        rng, shape = self.rng, self.shape
        if kind == "forest_floor":
            return self._forest_floor_snow(image, look)
        if kind == "peaks":
            line = np.quantile(self.dem, self.rng.uniform(0.85, 0.97))
            snow = self.dem > line + 0.03 * np.ptp(self.dem) * _smooth_noise(rng, shape, 4.0)
        else:  # gullies: valley lines and shaded hollows keep snow
            hollow = ndimage.gaussian_filter(self.dem, 4.0 * 10 / self.gsd) - self.dem
            patch = _smooth_noise(rng, shape, 2.0)
            snow = (hollow > np.quantile(hollow, rng.uniform(0.8, 0.93))) & (patch > -0.3) & (self.slope > 5)
        cover = rng.uniform(0.5, 1.0, (3,)) * np.array([0.78, 0.80, 0.84])
        for band in range(3):
            image[band][snow] = cover[band] * (1 + 0.06 * self.grass_texture[snow])
        return snow

    def _forest_floor_snow(self, image: np.ndarray, look: ImageLook) -> np.ndarray:
        """Partial snow under bare forest and on grass: a share of each pixel, more where the low winter sun
        lights the slope least, in hollows and higher up; streaks and patches, none on steep rock or water.
        Returns where the share exceeds a third (what an analyst's snow mask would hold)."""
        from .simulate_scene import _illumination

        rng, shape = self.rng, self.shape
        light = _illumination(self.dem, self.gsd, look.sun_azimuth_deg, look.sun_elevation_deg, 0.0)
        away = np.clip(1.0 - light, 0.0, 1.0)  # 0 on flat ground and sunlit slopes, 1 in full self-shade
        hollow = ndimage.gaussian_filter(self.dem, 3.0 * 10 / self.gsd) - self.dem
        hollow = np.clip(hollow / max(float(np.quantile(np.abs(hollow), 0.95)), 1e-6), 0.0, 1.0)
        streaks = _smooth_noise(rng, shape, 1.2) + 0.5 * _smooth_noise(rng, shape, 4.0)
        amount = rng.uniform(0.6, 1.2)
        share = amount * (1.3 * away + 0.35 * hollow) + 0.15 * streaks - 0.15
        share[~np.isin(self.cover, (FOREST, GRASS, FIELD)) | self.water] = 0.0
        share = np.clip(share, 0.0, rng.uniform(0.6, 0.9))
        white = rng.uniform(0.6, 0.95) * np.array([0.78, 0.80, 0.84])
        for band in range(3):
            image[band] = (1.0 - share) * image[band] + share * white[band]
        return share > 1 / 3

    def render(self) -> Dict[str, np.ndarray]:
        rng, style, shape, look = self.rng, self.style, self.shape, self.look
        self.land_cover()
        crop_post = self.crop_pre.copy()
        changed = rng.random(len(crop_post)) < look.harvest_fraction
        crop_post[changed] = rng.integers(0, 3, int(changed.sum()))
        pre = self._season(self.crop_pre, look.pre)
        post = self._season(crop_post, look.post)
        vegetated = np.isin(self.cover, (FOREST, GRASS, FIELD, ROCK))

        # old scars in both images, partly revegetated
        for window, inside, _ in self.landslide_bodies(style.old_scars_per_km2, vegetated, style.source_slope_deg,
                                                       2, (300.0, 1e5)):
            regrowth = rng.uniform(0.2, 0.7)
            colour = (1 - regrowth) * np.array(look.scar_colour) + regrowth * np.array(style.grass)
            for image in (pre, post):
                for band in range(3):
                    image[band][window][inside] = colour[band] * (1 + 0.2 * self.forest_texture[window][inside])

        # changes that are not landslides
        gentle = self.slope < 12
        self._patches(post, pre, look.clearcuts_per_km2, (self.cover == FOREST) & (self.slope < 20), (4, 25),
                      (0.13, 0.11, 0.08), 0.7)
        self._patches(post, pre, look.constructions_per_km2, gentle & ~self.water, (3, 15), (0.26, 0.25, 0.23), 0.85)
        self._patches(post, pre, look.quarries_per_km2, (self.slope > 10) & ~self.water, (5, 20), (0.30, 0.29, 0.27),
                      0.5, irregular=True)
        for line, width in zip(self.river_lines, self.river_width_px):
            if rng.random() < 0.6:
                distance = ndimage.distance_transform_edt(~line)
                wider = (distance <= width * rng.uniform(0.8, 1.8)) & ~self.water
                bars = wider & (_smooth_noise(rng, shape, 3.0) > 0.3)
                for band, (w, s) in enumerate(zip((0.03, 0.045, 0.055), (0.20, 0.19, 0.17))):
                    post[band][wider] = w
                    post[band][bars] = s
        if rng.random() < 0.5:
            new_road = _line_raster(_meander(rng, shape, 0.3), shape) & ~self.water
            for band, value in enumerate((0.19, 0.18, 0.17)):
                post[band][new_road] = value

        # the event landslides: sparse everywhere, or a dense swarm over part of the scene
        allowed = ~np.isin(self.cover, (WATER, URBAN))
        if look.swarm_area_fraction < 1.0:
            field_ = _smooth_noise(rng, shape, rng.uniform(30, 80) * 10 / self.gsd)
            allowed &= field_ > np.quantile(field_, 1.0 - look.swarm_area_fraction)
        per_km2 = look.swarm_per_km2 * look.swarm_area_fraction
        event = np.zeros(shape, bool)
        count = 0
        bodies = self.landslide_bodies(per_km2, allowed, style.source_slope_deg, int(rng.integers(1, 5)),
                                       (100.0, look.largest_m2))
        deposit_colour = np.array(look.scar_colour) * rng.uniform(0.55, 0.9)
        for window, inside, t in bodies:
            scar = np.array(look.scar_colour) * rng.uniform(1 - look.scar_brightness_spread, 1 + look.scar_brightness_spread)
            scarp = scar * rng.uniform(1.0, 1.25)
            left = rng.uniform(0.0, look.vegetation_left)
            for band in range(3):
                patch = post[band][window]
                body = scarp[band] + (scar[band] - scarp[band]) * np.clip(t / 0.3, 0, 1)
                if look.deposits:
                    body = np.where(t > 0.75, deposit_colour[band], body)
                body = body * (1 + 0.18 * self.grass_texture[window] + 0.12 * self.forest_texture[window])
                patch[inside] = (1 - left) * body[inside] + left * patch[inside]
            event[window] |= inside
            count += 1

        # snow in one image only
        snow_masks = [self._snow(image, image_look.snow, image_look) if image_look.snow != "none" else np.zeros(shape, bool)
                      for image, image_look in ((pre, look.pre), (post, look.post))]

        images = []
        validity = []
        cloud_mask = snow_masks[0] | snow_masks[1]
        for image, image_look in ((pre, look.pre), (post, look.post)):
            light = _illumination_with_shadow(self.dem, self.gsd, image_look, rng.uniform(0.15, 0.4), look.cast_shadows)
            image = image * light
            if image_look.cloud_cover > 0.005:
                cloud_mask |= add_clouds(rng, image, self.gsd, image_look.cloud_cover, (20, 60))
            # path radiance (blue most), offsets and gain
            haze = image_look.path_radiance * (1 + 0.4 * _smooth_noise(rng, shape, 40.0))
            for band, scatter in enumerate((0.45, 0.7, 1.0)):
                image[band] = (image[band] * (1 - haze) + haze * scatter + image_look.offsets[band]) * image_look.gains[band]
            if image_look.blur_px > 0.05:
                image = np.stack([ndimage.gaussian_filter(b, image_look.blur_px) for b in image])
            image = image + rng.normal(0, image_look.noise, image.shape)
            valid = swath_edge(rng, shape, 0.4)
            images.append(image)
            validity.append(valid)

        angle = rng.uniform(0, 2 * np.pi)
        shift = look.misregistration_px * np.array([math.sin(angle), math.cos(angle)])
        images[1] = np.stack([ndimage.shift(b, shift, order=1, mode="nearest") for b in images[1]])
        self.details.update(event_landslides_drawn=count, landslide_fraction=round(float(event.mean()), 5),
                            cloud_or_snow_fraction=round(float(cloud_mask.mean()), 4))
        return {"pre": np.clip(images[0], 0, 1.5), "post": np.clip(images[1], 0, 1.5), "event": event,
                "cloud_mask": cloud_mask, "pre_valid": validity[0], "post_valid": validity[1]}

    def _patches(self, post, pre, per_km2, allowed, size_range, colour, post_only_share, irregular=False) -> int:
        rng, shape = self.rng, self.shape
        candidates = np.flatnonzero(allowed)
        count = int(rng.poisson(per_km2 * self.km2)) if len(candidates) else 0
        for _ in range(count):
            centre = np.unravel_index(candidates[rng.integers(len(candidates))], shape)
            window, inside = _polygon_patch(rng, shape, centre, tuple(rng.uniform(*size_range, 2) * 10 / self.gsd),
                                            rng.uniform(0, np.pi))
            if irregular:
                inside &= _smooth_noise(rng, inside.shape, 2.0) > -0.6 if inside.size > 16 else inside
            tint = np.array(colour) * rng.uniform(0.75, 1.25)
            for image in ((post,) if rng.random() < post_only_share else (pre, post)):
                for band in range(3):
                    image[band][window][inside] = tint[band] * (1 + 0.2 * self.grass_texture[window][inside])
        return count


def _illumination_with_shadow(dem: np.ndarray, gsd: float, look: ImageLook, diffuse: float, shadows: bool) -> np.ndarray:
    from .simulate_scene import _illumination

    light = _illumination(dem, gsd, look.sun_azimuth_deg, look.sun_elevation_deg, diffuse)
    if shadows:
        shade = cast_shadow(dem, gsd, look.sun_azimuth_deg, look.sun_elevation_deg)
        light = np.where(shade, diffuse, light)  # only the sky lights a cast shadow
    return np.clip(light, 0.0, 3.0)
