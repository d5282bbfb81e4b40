"""Plausibility checks of a mapping run's inputs, before any window runs (issue 13).

What passes GDAL can still be the wrong thing: the same layer chosen as pre
and post image (the dialog pre-fills every raster with the active layer), an
RGB image chosen as DEM, a DEM in feet, image values that contradict the
chosen radiometry. Each check reads at most a few small samples, so it costs
the same on any scene size. Refusals raise :class:`InputDataError` naming the
parameter (by its label in the dialog); doubtful cases return warnings for
the log.
"""

from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal

from .card import TerrainRecipe
from .errors import InputDataError
from .grid import Grid, RasterInput, WindowReader, open_raster
from .terrain import HALO_PX, terrain_features

gdal.UseExceptions()

US_SURVEY_FOOT = 1200.0 / 3937.0
INTERNATIONAL_FOOT = 0.3048


def unit_to_metres(unit: str) -> Optional[float]:
    """Metres per unit of an elevation unit as GDAL reports it (``m``, ``metre``, ``ft``, ``US survey foot``...);
    None for a unit that is no length (``degree``, ``dB``...)."""
    key = " ".join(unit.lower().replace("_", " ").replace("-", " ").split())
    if key in ("", "m") or key.startswith("m "):
        return 1.0
    if "survey" in key or key in ("us ft", "ftus", "ft us", "foot us", "us foot", "us feet"):
        return US_SURVEY_FOOT
    if key in ("ft", "foot", "feet") or key.startswith("ft ") or "foot" in key or "feet" in key:
        return INTERNATIONAL_FOOT
    for prefixes, factor in ((("mm", "millimet"), 0.001), (("cm", "centimet"), 0.01), (("dm", "decimet"), 0.1),
                             (("km", "kilomet"), 1000.0)):
        if key == prefixes[0] or prefixes[1] in key:
            return factor
    if "metre" in key or "meter" in key:
        return 1.0
    return None


MAX_MEDIAN_SLOPE_DEG = 45.0
"""A scene whose sampled median slope is steeper than this is not terrain in metres (a DEM in feet
taken for metres gives 47° on the sample event, whose true median is 18°)."""
SAMPLE_PX = 256
"""Side of each sample window (DEM on the grid, images on their own pixels)."""


def same_file(a: str, b: str) -> bool:
    """Two sources name the same file (after resolving links and relative parts)."""
    def key(path):
        return os.path.normcase(os.path.realpath(path)) if os.path.exists(path) else path
    return key(a) == key(b)


def check_distinct_layers(pre: RasterInput, post: RasterInput, dem: RasterInput) -> None:
    """Refuse the same layer (and bands) as pre and post image, and a DEM band that is an image band."""
    if same_file(pre.path, post.path) and tuple(pre.bands) == tuple(post.bands):
        raise InputDataError(
            f"Pre-event image and post-event image are the same layer ({pre.path}, bands {list(pre.bands)}): "
            "choose the image taken before the event and the one taken after it.")
    for label, image in (("pre-event image", pre), ("post-event image", post)):
        if same_file(dem.path, image.path) and dem.bands[0] in image.bands:
            raise InputDataError(
                f"DEM: band {dem.bands[0]} of {dem.path} is also a band of the {label}: choose the elevation "
                "raster as DEM.")


def dem_metres_per_unit(dem: RasterInput) -> Tuple[float, str]:
    """The factor from the DEM band's values to metres, from its unit (GDAL's band unit type).

    Returns ``(factor, unit)``; raises when the unit is no length unit.
    """
    dataset = open_raster(dem.path)
    unit = (dataset.GetRasterBand(dem.bands[0]).GetUnitType() or "").strip()
    factor = unit_to_metres(unit)
    if factor is None:
        raise InputDataError(
            f"DEM: the unit of band {dem.bands[0]} of {dem.path} is '{unit}', which is not a unit of elevation "
            "(metres, feet, US survey feet, mm, cm, km): convert the DEM to metres or correct its unit.")
    return factor, unit or "m"


def check_dem_is_elevation(dem: RasterInput) -> None:
    """Refuse an 8-bit raster with three or more bands (an RGB image) as DEM."""
    dataset = open_raster(dem.path)
    if dataset.RasterCount >= 3 and dataset.GetRasterBand(dem.bands[0]).DataType == gdal.GDT_Byte:
        raise InputDataError(
            f"DEM: {dem.path} has {dataset.RasterCount} bands of 8-bit values, like an RGB image, not elevations: "
            "choose the elevation raster.")


def sample_windows(grid: Grid, size_px: int = SAMPLE_PX) -> List[Tuple[int, int, int, int]]:
    """Up to five ``(row, col, rows, cols)`` windows spread over the grid: its centre and the centres of its quarters."""
    rows, cols = min(size_px, grid.height_px), min(size_px, grid.width_px)
    centres = [(0.5, 0.5), (0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75)]
    windows = []
    for fy, fx in centres:
        row = int(min(max(0, fy * grid.height_px - rows / 2), grid.height_px - rows))
        col = int(min(max(0, fx * grid.width_px - cols / 2), grid.width_px - cols))
        if (row, col, rows, cols) not in windows:
            windows.append((row, col, rows, cols))
    return windows


def check_dem_slopes(dem: RasterInput, grid: Grid, metres_per_unit: float, recipe: TerrainRecipe) -> float:
    """Refuse a DEM whose sampled median slope on the grid is implausible; return that median (degrees)."""
    reader = WindowReader(dem, grid)
    slopes = []
    for row, col, rows, cols in sample_windows(grid):
        values = reader.read(row - HALO_PX, col - HALO_PX, rows + 2 * HALO_PX, cols + 2 * HALO_PX)[0]
        _, slope = terrain_features(values * metres_per_unit, grid.gsd_m, grid.gsd_m, recipe)
        slopes.append(slope[np.isfinite(slope)])
    pooled = np.concatenate(slopes) if slopes else np.zeros(0)
    if pooled.size < 100:
        return float("nan")
    median = float(np.median(pooled))
    if median > MAX_MEDIAN_SLOPE_DEG:
        raise InputDataError(
            f"DEM: its slopes are implausible (median {median:.0f}° over the sampled area, steeper than "
            f"{MAX_MEDIAN_SLOPE_DEG:g}°): are its elevations in metres? A DEM in feet needs its band unit set to "
            "'ft'; an image is no DEM.")
    return median


def image_value_sample(image: RasterInput, size_px: int = SAMPLE_PX) -> np.ndarray:
    """Valid values of the chosen bands in up to five ``size_px`` windows spread over the image.

    Full-resolution windows (centre and quarter centres), so the cost is the
    same on any image size, whether it has overviews or not.
    """
    dataset = open_raster(image.path)
    width, height = dataset.RasterXSize, dataset.RasterYSize
    cols, rows = min(size_px, width), min(size_px, height)
    offsets = set()
    for fy, fx in ((0.5, 0.5), (0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75)):
        offsets.add((int(min(max(0, fx * width - cols / 2), width - cols)),
                     int(min(max(0, fy * height - rows / 2), height - rows))))
    values = []
    for number in image.bands:
        band = dataset.GetRasterBand(number)
        mask = band.GetMaskBand()
        for x, y in sorted(offsets):
            data = band.ReadAsArray(x, y, cols, rows).astype(np.float64)
            valid = (mask.ReadAsArray(x, y, cols, rows) > 0) & np.isfinite(data)
            values.append(data[valid])
    return np.concatenate(values) if values else np.zeros(0)


def check_radiometry(label: str, image: RasterInput, radiometry: str, data_type: int) -> List[str]:
    """Refuse image values that contradict the chosen radiometry; return warnings for doubtful ones.

    Args:
        label: ``pre-event image`` or ``post-event image``.
        radiometry: The resolved radiometry (``8bit``, ``s2_l2a``, ``s2_l2a_offset``).
        data_type: GDAL data type of the image's first chosen band.
    """
    values = image_value_sample(image)
    if values.size == 0:
        return []
    high = float(np.percentile(values, 99))
    median = float(np.median(values))
    fix = "set 'Image type' (RADIOMETRY) to match the image"
    if radiometry == "8bit" and high > 255:
        raise InputDataError(
            f"Image type (RADIOMETRY): 8-bit RGB (0-255) was chosen, but the {label} {image.path} holds values up to "
            f"{high:,.0f} (99th percentile): choose Sentinel-2 L2A reflectance, or {fix}.")
    if radiometry in ("s2_l2a", "s2_l2a_offset") and data_type == gdal.GDT_Byte:
        raise InputDataError(
            f"Image type (RADIOMETRY): Sentinel-2 L2A reflectance was chosen, but the {label} {image.path} is an 8-bit image "
            f"(0-255): choose 8-bit RGB, or {fix}.")
    if radiometry == "s2_l2a_offset" and median < 1000:
        raise InputDataError(
            f"Image type (RADIOMETRY): reflectance with the +1000 offset was chosen, but half the values of the {label} "
            f"{image.path} lie below 1000 (median {median:,.0f}), which the offset would make negative: choose "
            f"Sentinel-2 L2A reflectance without offset, or {fix}.")
    if radiometry in ("s2_l2a", "s2_l2a_offset") and high <= 2.0:
        raise InputDataError(
            f"Image type (RADIOMETRY): Sentinel-2 L2A reflectance x 10000 was chosen, but the values of the {label} "
            f"{image.path} stay below 2 (99th percentile {high:.3g}), like reflectance as a fraction: scale the "
            "image by 10000 (Raster calculator) first.")
    warnings = []
    if radiometry in ("s2_l2a", "s2_l2a_offset") and high <= 255:
        warnings.append(
            f"Warning: the {label} is read as Sentinel-2 L2A reflectance x 10000, but its values stay below 256 "
            f"(99th percentile {high:,.0f}): if it is an 8-bit image, choose 8-bit RGB.")
    if radiometry == "s2_l2a" and float(np.percentile(values, 1)) >= 1000:
        warnings.append(
            f"Warning: every value of the {label} is 1000 or more (1st percentile {np.percentile(values, 1):,.0f}): "
            "if it is Sentinel-2 L2A of processing baseline 04.00 or later, choose the +1000 offset.")
    return warnings


def check_mapping_inputs(pre: RasterInput, post: RasterInput, dem: RasterInput, radiometries: Sequence[str],
                         data_types: Sequence[int], grid: Grid, recipe: TerrainRecipe) -> Tuple[float, List[str]]:
    """Every check above; returns the DEM's metres per unit and the warnings."""
    check_distinct_layers(pre, post, dem)
    check_dem_is_elevation(dem)
    metres_per_unit, _ = dem_metres_per_unit(dem)
    check_dem_slopes(dem, grid, metres_per_unit, recipe)
    warnings = []
    for label, image, radiometry, data_type in zip(("pre-event image", "post-event image"), (pre, post),
                                                   radiometries, data_types):
        warnings += check_radiometry(label, image, radiometry, data_type)
    return metres_per_unit, warnings
