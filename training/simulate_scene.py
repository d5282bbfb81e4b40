"""The surface of a simulated event, before and after it, as arrays (numpy and SciPy only).

:class:`Scene` draws terrain, land cover, the event's landslides and the
changes that are not landslides; :mod:`training.simulate` writes a scene as
an event folder, and :mod:`training.generated` turns scenes into training
tiles on machines without GDAL.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import numpy as np
from scipy import ndimage

from .simulate_styles import Style

# Land-cover classes of the simulated surface.
WATER, FOREST, GRASS, FIELD, ROCK, URBAN, ROAD, SNOW = range(8)

# ----------------------------------------------------------------------------- noise and terrain

def _spectral_noise(rng: np.random.Generator, shape: Tuple[int, int], exponent: float) -> np.ndarray:
    """Zero-mean unit-variance noise with a 1/f**exponent amplitude spectrum."""
    rows, cols = shape
    fy = np.fft.fftfreq(rows)[:, None]
    fx = np.fft.rfftfreq(cols)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    spectrum = np.fft.rfft2(rng.standard_normal(shape)) / radius ** exponent
    spectrum[0, 0] = 0.0
    noise = np.fft.irfft2(spectrum, s=shape)
    return (noise - noise.mean()) / (noise.std() + 1e-12)


def _smooth_noise(rng: np.random.Generator, shape: Tuple[int, int], sigma_px: float) -> np.ndarray:
    """Gaussian-filtered white noise, rescaled to zero mean and unit variance."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    return (noise - noise.mean()) / (noise.std() + 1e-12)


def _meander(rng: np.random.Generator, shape: Tuple[int, int], wiggle: float = 0.15) -> np.ndarray:
    """(N, 2) row/col points of a smooth random curve crossing the scene from one side to another."""
    rows, cols = shape
    n = 9
    t = np.linspace(-0.1, 1.1, n)
    side = rng.integers(2)
    across = rng.uniform(0.15, 0.85) + np.cumsum(rng.normal(0, wiggle, n))
    across = np.clip(across, -0.1, 1.1)
    knots = np.stack([t, across], 1) if side else np.stack([across, t], 1)
    fine = np.linspace(0, n - 1, 60 * n)
    points = np.stack([np.interp(fine, np.arange(n), knots[:, k]) for k in range(2)], 1)
    points = ndimage.gaussian_filter1d(points, 25, axis=0, mode="nearest")
    return points * np.array([rows, cols])


def _line_raster(points: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Bool raster of the pixels a polyline passes through (densely sampled)."""
    out = np.zeros(shape, bool)
    seg = np.diff(points, axis=0)
    steps = np.maximum(1, np.ceil(np.abs(seg).max(1) * 2).astype(int))
    for (r0, c0), (dr, dc), k in zip(points[:-1], seg, steps):
        s = np.arange(k) / k
        r = np.round(r0 + s * dr).astype(int)
        c = np.round(c0 + s * dc).astype(int)
        ok = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
        out[r[ok], c[ok]] = True
    return out


def _slope_deg(dem: np.ndarray, gsd: float) -> np.ndarray:
    gy, gx = np.gradient(dem, gsd)
    return np.degrees(np.arctan(np.hypot(gx, gy)))


def _terrain(rng: np.random.Generator, style: Style, shape: Tuple[int, int], gsd: float
             ) -> Tuple[np.ndarray, List[np.ndarray]]:
    """Elevation (m) and the river centre lines (row/col points)."""
    h = _spectral_noise(rng, shape, style.spectral_exponent)
    h = (h - h.min()) / (h.max() - h.min())
    if style.plains_fraction > 0:
        q = np.quantile(h, style.plains_fraction)
        h = np.where(h < q, q + (h - q) * 0.04, h)
    if style.plateau_fraction > 0:
        q = np.quantile(h, 1.0 - style.plateau_fraction)
        h = np.where(h > q, q + (h - q) * 0.05, h)
    rivers = [_meander(rng, shape) for _ in range(int(rng.integers(style.valley_count[0], style.valley_count[1] + 1)))]
    for points in rivers:
        distance = ndimage.distance_transform_edt(~_line_raster(points, shape))
        width_px = rng.uniform(25, 60) * 10.0 / gsd
        carve = np.exp(-(distance / width_px) ** 2)
        floor = h.min() + 0.02 * rng.random()
        h = h - style.valley_depth * carve * (h - floor + 0.05)
    h = ndimage.gaussian_filter(h, 1.0)
    gy, gx = np.gradient(h, gsd)
    p90 = np.quantile(np.hypot(gx, gy), 0.9)
    scale = math.tan(math.radians(style.slope_p90_deg)) / max(p90, 1e-12)
    return style.base_elevation_m + (h - h.min()) * scale, rivers


def _illumination(dem: np.ndarray, gsd: float, azimuth_deg: float, elevation_deg: float, diffuse: float) -> np.ndarray:
    """Relative irradiance of each pixel: Lambertian direct part plus a diffuse share."""
    gy, gx = np.gradient(dem, gsd)
    # x grows east, rows grow south: the surface normal is (-dz/dx, +dz/dy_row, 1) in (east, north, up).
    normal = np.stack([-gx, gy, np.ones_like(gx)])
    normal /= np.linalg.norm(normal, axis=0)
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    sun = np.array([math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el)])
    cos_i = np.clip(np.tensordot(sun, normal, 1), 0.0, None)
    return (1.0 - diffuse) * cos_i / math.sin(el) + diffuse


def add_clouds(rng: np.random.Generator, image: np.ndarray, gsd: float, cover_fraction: float,
               size_m_over_10: Tuple[float, float]) -> np.ndarray:
    """Clouds over ``cover_fraction`` of a (3, H, W) reflectance image, in place, with their shadows.

    Returns the thick cores (opacity > 0.6), which a cloud mask would hold; thin edges and shadows stay unmasked.
    """
    shape = image.shape[1:]
    field_ = _smooth_noise(rng, shape, rng.uniform(*size_m_over_10) * 10 / gsd)
    threshold = np.quantile(field_, 1.0 - cover_fraction)
    opacity = np.clip((field_ - threshold) / 0.6 + 0.3, 0, 1) * (field_ > threshold - 0.5)
    shift = (int(rng.integers(-25, 25) * 10 / gsd), int(rng.integers(-25, 25) * 10 / gsd))
    shadow = np.roll(opacity, shift, axis=(0, 1))
    for band, white in enumerate((0.70, 0.72, 0.76)):
        image[band] = image[band] * (1 - 0.6 * shadow) * (1 - opacity) + white * opacity
    return opacity > 0.6


def swath_edge(rng: np.random.Generator, shape: Tuple[int, int], max_share: float) -> np.ndarray:
    """Validity of an image: a quarter of the time a straight swath edge leaves 5 % to ``max_share`` as nodata."""
    valid = np.ones(shape, bool)
    if rng.random() < 0.25:
        rr, cc = np.mgrid[0:shape[0], 0:shape[1]]
        a, b = rng.uniform(-1, 1, 2)
        cut = a * (rr / shape[0] - 0.5) + b * (cc / shape[1] - 0.5)
        valid = cut < np.quantile(cut, 1.0 - rng.uniform(0.05, max_share))
    return valid


# ----------------------------------------------------------------------------- shapes

def _truncated_power_law(rng: np.random.Generator, n: int, low: float, high: float, alpha: float) -> np.ndarray:
    """Samples of p(a) ~ a**-(alpha + 1) on [low, high]."""
    u = rng.random(n)
    a, b = low ** -alpha, high ** -alpha
    return (a - u * (a - b)) ** (-1.0 / alpha)


def _gradients(dem: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    return np.gradient(ndimage.gaussian_filter(dem, 2.0))


def _path_from(gy: np.ndarray, gx: np.ndarray, start: Tuple[float, float], length_px: float,
               flat: np.ndarray) -> np.ndarray:
    rows, cols = gy.shape
    points = [start]
    r, c = start
    for _ in range(max(2, int(length_px * 2))):
        i, j = int(r), int(c)
        dr, dc = -gy[i, j], -gx[i, j]
        norm = math.hypot(dr, dc)
        if norm < 1e-9:
            break
        r, c = r + 0.5 * dr / norm, c + 0.5 * dc / norm
        if not (0 <= r < rows - 1 and 0 <= c < cols - 1) or (flat[int(r), int(c)] and len(points) > 4):
            break
        points.append((r, c))
    return np.asarray(points)


def _stamp(path: np.ndarray, width_px: float, shape: Tuple[int, int], rng: np.random.Generator
           ) -> Tuple[Tuple[slice, slice], np.ndarray, np.ndarray]:
    """A landslide-like body along ``path``: (window, inside mask, position 0..1 along the path)."""
    half = width_px / 2.0 + 3
    r0 = int(max(0, math.floor(path[:, 0].min() - half)))
    r1 = int(min(shape[0], math.ceil(path[:, 0].max() + half) + 1))
    c0 = int(max(0, math.floor(path[:, 1].min() - half)))
    c1 = int(min(shape[1], math.ceil(path[:, 1].max() + half) + 1))
    rr, cc = np.mgrid[r0:r1, c0:c1]
    pix = np.stack([rr.ravel(), cc.ravel()], 1).astype(float)
    d2 = ((pix[:, None, :] - path[None, :, :]) ** 2).sum(-1)
    nearest = d2.argmin(1)
    distance = np.sqrt(d2[np.arange(len(pix)), nearest])
    t = nearest / max(1, len(path) - 1)
    # narrow crown, widest in the body, a lobe at the toe
    profile = 0.55 + 0.45 * np.sin(np.pi * np.clip(t * 0.85 + 0.1, 0, 1)) ** 0.6
    wobble = 1.0 + 0.25 * np.sin(t * rng.uniform(6, 14) + rng.uniform(0, 6.3))
    jitter = 0.3 * np.sin(np.arctan2(pix[:, 0] - path[0, 0], pix[:, 1] - path[0, 1]) * rng.integers(3, 7)
                          + rng.uniform(0, 6.3))
    inside = distance + jitter <= np.maximum(0.7, width_px / 2.0 * profile * wobble)
    return (slice(r0, r1), slice(c0, c1)), inside.reshape(rr.shape), t.reshape(rr.shape)


def _pick_sources(rng: np.random.Generator, slope: np.ndarray, allowed: np.ndarray, count: int,
                  min_slope: float, clusters: int, cluster_radius_px: float) -> List[Tuple[int, int]]:
    """Source pixels on slopes of at least ``min_slope``, part of them around ``clusters`` centres."""
    rows, cols = slope.shape
    ok = allowed & (slope >= min_slope)
    candidates = np.flatnonzero(ok)
    if len(candidates) == 0 or count == 0:
        return []
    weights = slope.ravel()[candidates] ** 2
    weights /= weights.sum()
    centres = rng.choice(candidates, size=max(1, clusters), p=weights)
    sources: List[Tuple[int, int]] = []
    attempts = 0
    while len(sources) < count and attempts < count * 40:
        attempts += 1
        if rng.random() < 0.7:
            centre = centres[rng.integers(len(centres))]
            r = int(round(centre // cols + rng.normal(0, cluster_radius_px)))
            c = int(round(centre % cols + rng.normal(0, cluster_radius_px)))
            if not (0 <= r < rows and 0 <= c < cols) or not ok[r, c]:
                continue
        else:
            flat_index = candidates[rng.integers(len(candidates))]
            r, c = int(flat_index // cols), int(flat_index % cols)
        sources.append((r, c))
    return sources


def _polygon_patch(rng: np.random.Generator, shape: Tuple[int, int], centre: Tuple[float, float],
                   size_px: Tuple[float, float], angle: float) -> Tuple[Tuple[slice, slice], np.ndarray]:
    """A rotated rectangle (a parcel, a clear-cut) around ``centre``."""
    extent = int(math.ceil(max(size_px))) + 2
    r0, r1 = int(max(0, centre[0] - extent)), int(min(shape[0], centre[0] + extent + 1))
    c0, c1 = int(max(0, centre[1] - extent)), int(min(shape[1], centre[1] + extent + 1))
    r1, c1 = max(r0, r1), max(c0, c1)
    rr, cc = np.mgrid[r0:r1, c0:c1].astype(float)
    u = (rr - centre[0]) * math.cos(angle) + (cc - centre[1]) * math.sin(angle)
    v = -(rr - centre[0]) * math.sin(angle) + (cc - centre[1]) * math.cos(angle)
    inside = (np.abs(u) <= size_px[0] / 2) & (np.abs(v) <= size_px[1] / 2)
    return (slice(r0, r1), slice(c0, c1)), inside


# ----------------------------------------------------------------------------- the scene

class Scene:
    """The surface of one event before and after it, in reflectance."""

    def __init__(self, style: Style, seed: int, size_px: int, gsd: float):
        self.style, self.gsd = style, gsd
        self.rng = np.random.default_rng(seed)
        self.shape = (size_px, size_px)
        self.details: Dict[str, object] = {}
        self.dem, self.rivers = _terrain(self.rng, style, self.shape, gsd)
        self.slope = _slope_deg(self.dem, gsd)
        self.gy, self.gx = _gradients(self.dem)
        self.km2 = size_px * size_px * gsd * gsd / 1e6

    # -- land cover and its reflectance before the event
    def land_cover(self) -> None:
        rng, style, shape = self.rng, self.style, self.shape
        cover = np.full(shape, GRASS, np.uint8)
        gentle = self.slope < 6.0
        patchy = _smooth_noise(rng, shape, 12.0 * 10 / self.gsd)
        forest_threshold = np.quantile(patchy, 1.0 - style.forest_cover)
        cover[(patchy > forest_threshold) & ~gentle] = FOREST
        # fields: parcels on gentle ground
        self.parcels = np.zeros(shape, np.int32)
        angle = rng.uniform(0, np.pi)
        rr, cc = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
        u = rr * math.cos(angle) + cc * math.sin(angle)
        v = -rr * math.sin(angle) + cc * math.cos(angle)
        pw, ph = rng.uniform(8, 25, 2) * 10 / self.gsd
        parcel_id = (np.floor(u / pw) * 100003 + np.floor((v + 0.37 * np.floor(u / pw) * ph) / ph)).astype(np.int64)
        _, parcel_index = np.unique(parcel_id, return_inverse=True)
        parcel_index = parcel_index.reshape(shape)
        field_noise = _smooth_noise(rng, shape, 20.0 * 10 / self.gsd)
        fields = gentle & (field_noise > np.quantile(field_noise, 1.0 - style.field_cover))
        cover[fields] = FIELD
        self.parcels = np.where(fields, parcel_index + 1, 0)
        # high ground: grass/rock above the treeline
        if style.treeline_quantile < 1.0:
            tree = np.quantile(self.dem, style.treeline_quantile)
            rockline = tree + (self.dem.max() - tree) * 0.5
            cover[(self.dem > tree) & (cover == FOREST)] = GRASS
            cover[(self.dem > rockline) | (self.slope > 55)] = ROCK
        # rivers
        self.river_lines = [_line_raster(p, shape) for p in self.rivers]
        self.river_width_px = [self.rng.uniform(0.6, 2.5) * 10 / self.gsd for _ in self.rivers]
        self.water = np.zeros(shape, bool)
        for line, width in zip(self.river_lines, self.river_width_px):
            self.water |= ndimage.distance_transform_edt(~line) <= width / 2
        cover[self.water] = WATER
        # settlements on gentle ground, roads between
        self.built = np.zeros(shape, bool)
        gentle_idx = np.flatnonzero(gentle & ~self.water)
        for _ in range(style.settlements if len(gentle_idx) else 0):
            centre = np.unravel_index(gentle_idx[rng.integers(len(gentle_idx))], shape)
            for _ in range(int(rng.integers(15, 60))):
                c = (centre[0] + rng.normal(0, 12 * 10 / self.gsd), centre[1] + rng.normal(0, 12 * 10 / self.gsd))
                window, inside = _polygon_patch(rng, shape, c, tuple(rng.uniform(1.2, 3.5, 2) * 10 / self.gsd),
                                                rng.uniform(0, np.pi))
                self.built[window] |= inside
        cover[self.built] = URBAN
        self.roads = np.zeros(shape, bool)
        for _ in range(style.roads):
            self.roads |= _line_raster(_meander(rng, shape, 0.25), shape)
        cover[self.roads & ~self.water] = ROAD
        self.cover = cover
        self.forest_texture = _smooth_noise(rng, shape, 0.7)
        self.forest_scale = _smooth_noise(rng, shape, 6.0)
        self.grass_texture = _smooth_noise(rng, shape, 3.0)
        n_parcels = int(self.parcels.max()) + 1
        self.crop_pre = rng.integers(0, 3, n_parcels)     # 0 green crop, 1 stubble, 2 ploughed
        self.details["land_cover_fractions"] = {
            name: round(float((cover == value).mean()), 4) for name, value in (
                ("water", WATER), ("forest", FOREST), ("grass", GRASS), ("field", FIELD), ("rock", ROCK),
                ("built", URBAN), ("road", ROAD))}

    def _reflectance(self, crop: np.ndarray, greenness: float) -> np.ndarray:
        """(3, H, W) surface reflectance of the land cover, ``greenness`` the season (0.7 dry .. 1.2 lush)."""
        style, shape = self.style, self.shape
        out = np.zeros((3,) + shape, np.float32)

        season = np.array([2.0 - greenness, greenness, 1.0]) ** 0.5
        forest = np.array(style.forest) * season * np.array([1.0, 1.0, 1.0])
        grass = np.array(style.grass) * season
        tex_forest = 0.35 * self.forest_texture + 0.15 * self.forest_scale
        for band in range(3):
            out[band] = grass[band] * (1 + 0.15 * self.grass_texture)
            out[band][self.cover == FOREST] = (forest[band] * (1 + tex_forest))[self.cover == FOREST]
        crop_colours = np.array([[0.05, 0.10, 0.04], [0.17, 0.15, 0.09], [0.12, 0.09, 0.065]])
        crop_colours[0] *= season
        field = self.parcels > 0
        per_parcel = crop_colours[crop[self.parcels[field]]]
        for band in range(3):
            out[band][field] = per_parcel[:, band] * (1 + 0.06 * self.grass_texture[field])
        for value, rgb, tex in ((ROCK, style.rock, 0.2), (URBAN, (0.16, 0.14, 0.13), 0.35),
                                (ROAD, (0.13, 0.125, 0.12), 0.05), (WATER, (0.025, 0.04, 0.05), 0.1)):
            where = self.cover == value
            for band in range(3):
                out[band][where] = (rgb[band] * (1 + tex * self.forest_texture))[where]
        return out

    # -- events and distractors
    def landslide_bodies(self, per_km2: float, allowed: np.ndarray, slope_min: float, clusters: int,
                         area_range=(100.0, 5e5)) -> List[Tuple[Tuple[slice, slice], np.ndarray, np.ndarray]]:
        rng = self.rng
        count = int(rng.poisson(per_km2 * self.km2))
        sources = _pick_sources(rng, self.slope, allowed, count, slope_min, clusters, rng.uniform(15, 50) * 10 / self.gsd)
        # a power-law tail above a roll-over, and a share of small ones below it (Malamud et al. 2004)
        rollover = min(max(area_range[0], 1000.0), area_range[1])
        areas = _truncated_power_law(rng, len(sources), rollover, area_range[1], 1.0)
        small = rng.random(len(sources)) < 0.25
        areas[small] = np.exp(rng.uniform(math.log(area_range[0]), math.log(rollover), int(small.sum())))
        flat = self.slope < 4.0
        bodies = []
        for (r, c), area in zip(sources, areas):
            ratio = rng.uniform(1.5, 5.0)
            width_m = math.sqrt(area / (0.8 * ratio))
            path = _path_from(self.gy, self.gx, (r + 0.5, c + 0.5), ratio * width_m / self.gsd, flat)
            bodies.append(_stamp(path, max(0.8, width_m / self.gsd), self.shape, rng))
        return bodies

    def render(self) -> Dict[str, np.ndarray]:
        """Pre and post reflectance, the event mask, the cloud/snow mask and per-date validity."""
        rng, style, shape = self.rng, self.style, self.shape
        self.land_cover()
        greenness_pre = rng.uniform(0.8, 1.2)
        greenness_post = float(np.clip(greenness_pre + rng.normal(0, 0.15), 0.7, 1.25))
        crop_post = self.crop_pre.copy()
        changed = rng.random(len(crop_post)) < 0.35
        crop_post[changed] = rng.integers(0, 3, int(changed.sum()))
        pre = self._reflectance(self.crop_pre, greenness_pre)
        post = self._reflectance(crop_post, greenness_post)
        vegetated = np.isin(self.cover, (FOREST, GRASS, FIELD, ROCK))

        # old scars: landslide shapes already there before the event, partly revegetated
        scar_count = 0
        for window, inside, t in self.landslide_bodies(style.old_scars_per_km2, vegetated, style.source_slope_deg,
                                                       2, (300.0, 1e5)):
            regrowth = rng.uniform(0.2, 0.6)
            colour = (1 - regrowth) * np.array(style.soil) + regrowth * np.array(style.grass)
            for image in (pre, post):
                for band in range(3):
                    patch = image[band][window]
                    patch[inside] = colour[band] * (1 + 0.2 * self.forest_texture[window][inside])
            scar_count += 1

        # clear-cuts on gentle forest ground: bare in the post image (some already in the pre image)
        cut_count = 0
        forest_gentle = np.flatnonzero((self.cover == FOREST) & (self.slope < 15.0))
        for _ in range(int(rng.poisson(style.clearcuts_per_km2 * self.km2)) if len(forest_gentle) else 0):
            centre = np.unravel_index(forest_gentle[rng.integers(len(forest_gentle))], shape)
            window, inside = _polygon_patch(rng, shape, centre, tuple(rng.uniform(4, 25, 2) * 10 / self.gsd),
                                            rng.uniform(0, np.pi))
            colour = np.array([0.13, 0.11, 0.08]) * rng.uniform(0.8, 1.3)
            targets = (post,) if rng.random() < 0.7 else (pre, post)
            for image in targets:
                for band in range(3):
                    image[band][window][inside] = colour[band] * (1 + 0.25 * self.grass_texture[window][inside])
            cut_count += 1

        # river changes: wider channel with bright sand bars after the event
        for line, width in zip(self.river_lines, self.river_width_px):
            distance = ndimage.distance_transform_edt(~line)
            wider = (distance <= width * rng.uniform(0.8, 1.6)) & ~self.water
            bars = wider & (_smooth_noise(rng, shape, 3.0) > 0.3)
            for band, (w, s) in enumerate(zip((0.03, 0.045, 0.055), (0.20, 0.19, 0.17))):
                post[band][wider] = w
                post[band][bars] = s
        # a new road after the event
        new_road = _line_raster(_meander(rng, shape, 0.3), shape) & (self.cover != WATER)
        for band, value in enumerate((0.19, 0.18, 0.17)):
            post[band][new_road] = value

        # the event landslides
        allowed = ~np.isin(self.cover, (WATER, URBAN))
        clusters = int(rng.integers(style.clusters[0], style.clusters[1] + 1))
        event = np.zeros(shape, bool)
        count = 0
        for window, inside, t in self.landslide_bodies(style.landslides_per_km2, allowed, style.source_slope_deg,
                                                       clusters):
            scarp = np.array(style.rock) * rng.uniform(0.9, 1.2)
            debris = np.array(style.soil) * rng.uniform(0.8, 1.2)
            cover_left = rng.uniform(0.0, 0.25)
            for band in range(3):
                patch = post[band][window]
                body = scarp[band] + (debris[band] - scarp[band]) * np.clip(t / 0.35, 0, 1)
                body = body * (1 + 0.18 * self.grass_texture[window] + 0.12 * self.forest_texture[window])
                patch[inside] = (1 - cover_left) * body[inside] + cover_left * patch[inside]
            event[window] |= inside
            count += 1
        self.details.update(old_scars=scar_count, clearcuts=cut_count, event_landslides_drawn=count,
                            greenness_pre=round(greenness_pre, 3), greenness_post=round(greenness_post, 3))

        # fresh snow on high ground in one of the dates
        snow = np.zeros(shape, bool)
        if style.snow_quantile < 1.0 and rng.random() < 0.7:
            line = np.quantile(self.dem, style.snow_quantile) + rng.normal(0, 0.02) * np.ptp(self.dem)
            snow = (self.dem > line + 0.03 * np.ptp(self.dem) * _smooth_noise(rng, shape, 4.0))
            target = post if rng.random() < 0.7 else pre
            for band, value in enumerate((0.75, 0.78, 0.82)):
                target[band][snow] = value * (1 + 0.05 * self.grass_texture[snow])

        # topographic shading with a sun per date
        images = []
        for image in (pre, post):
            azimuth = rng.uniform(120, 200) if style.epsg < 32700 else rng.uniform(-20, 60)
            elevation = rng.uniform(25, 65)
            images.append(image * _illumination(self.dem, self.gsd, azimuth, elevation, rng.uniform(0.2, 0.4)))

        # clouds (thick cores masked, thin edges and shadows not), haze and gain per date
        cloud_mask = snow.copy()
        validity = []
        for index, image in enumerate(images):
            cover_fraction = rng.uniform(*style.cloud_cover) * (1.0 if index == 1 else 0.5)
            if cover_fraction > 0.005:
                cloud_mask |= add_clouds(rng, image, self.gsd, cover_fraction, (25, 60))
            haze = rng.uniform(*style.haze) * (1 + 0.5 * _smooth_noise(rng, shape, 40.0))
            gain = rng.uniform(0.9, 1.1, 3)
            for band, scatter in enumerate((0.6, 0.8, 1.0)):
                image[band] = (image[band] * (1 - haze * 3) + haze * scatter) * gain[band]
            image += rng.normal(0, 0.003, image.shape)
            valid = swath_edge(rng, shape, 0.2)
            validity.append(valid)

        # post image misregistered by a fraction of a pixel
        shift = rng.uniform(-0.6, 0.6, 2)
        images[1] = np.stack([ndimage.shift(b, shift, order=1, mode="nearest") for b in images[1]])
        self.details.update(post_shift_px=[round(float(s), 3) for s in shift],
                            cloud_or_snow_fraction=round(float(cloud_mask.mean()), 4))
        return {"pre": np.clip(images[0], 0, 1), "post": np.clip(images[1], 0, 1), "event": event,
                "cloud_mask": cloud_mask, "pre_valid": validity[0], "post_valid": validity[1]}


