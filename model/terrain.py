"""Hillshade and slope from a DEM window, as gdaldem computes them.

One function, :func:`terrain_features`, serves both the plugin (per inference
window) and the trainer (per tile, also after geometric augmentation of the
DEM), so the model always sees terrain computed the same way.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .card import TerrainRecipe

HALO_PX = 1
"""Pixels of DEM needed on each side of a window (3x3 kernels)."""


def _gradients(dem: np.ndarray, cell_x_m: float, cell_y_m: float, recipe: TerrainRecipe) -> Tuple[np.ndarray, np.ndarray]:
    """dz/dx (towards east) and dz/dy (towards north) for the interior of ``dem``.

    ``dem`` is either a ``(rows + 2, cols + 2)`` window or the ``(9, rows, cols)``
    neighbourhood stack of :func:`_fill_missing_neighbours`.
    """
    if dem.ndim == 3:  # (9, rows, cols) neighbourhoods
        a, b, c, d, _, f, g, h, i = (n * recipe.z_factor for n in dem)
    else:
        z = dem.astype(np.float64) * recipe.z_factor
        a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
        d, f = z[1:-1, :-2], z[1:-1, 2:]
        g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    if recipe.gradient == "Horn":
        dz_dx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8.0 * cell_x_m)
        dz_dy = ((a + 2 * b + c) - (g + 2 * h + i)) / (8.0 * cell_y_m)
    else:  # Zevenbergen & Thorne
        dz_dx = (f - d) / (2.0 * cell_x_m)
        dz_dy = (b - h) / (2.0 * cell_y_m)
    return dz_dx, dz_dy


def _fill_missing_neighbours(dem: np.ndarray) -> np.ndarray:
    """Stack of 3x3 windows where NaN neighbours are replaced by the centre value.

    Returned as a ``(9, rows, cols)`` array of the neighbours of each interior
    pixel, in row-major window order, which :func:`_gradients` accepts.
    """
    rows, cols = dem.shape[0] - 2, dem.shape[1] - 2
    centre = dem[1:-1, 1:-1]
    out = np.empty((9, rows, cols), dtype=np.float64)
    for k in range(9):
        dr, dc = divmod(k, 3)
        neighbour = dem[dr : dr + rows, dc : dc + cols]
        out[k] = np.where(np.isnan(neighbour), centre, neighbour)
    return out


def terrain_features(dem: np.ndarray, cell_x_m: float, cell_y_m: float, recipe: TerrainRecipe) -> Tuple[np.ndarray, np.ndarray]:
    """Hillshade (0..255) and slope (degrees) of a DEM window with a 1 px halo.

    Follows gdaldem's ``hillshade`` and ``slope`` (default, non-combined
    shading): the result for each interior pixel depends on its 3x3
    neighbourhood; any NaN in it gives NaN.

    Args:
        dem: Elevations ``(rows + 2, cols + 2)`` in metres, NaN for nodata.
        cell_x_m: Pixel width in metres.
        cell_y_m: Pixel height in metres (positive).
        recipe: The card's terrain recipe.

    Returns:
        ``(hillshade, slope)``, float32 arrays ``(rows, cols)``.
    """
    if dem.ndim != 2 or dem.shape[0] < 3 or dem.shape[1] < 3:
        raise ValueError(f"A DEM window needs a 1 px halo; got shape {dem.shape}.")
    centre_missing = np.isnan(dem[1:-1, 1:-1])
    if recipe.fill_missing_neighbours:
        dem = _fill_missing_neighbours(dem)
    dz_dx, dz_dy = _gradients(dem, cell_x_m, cell_y_m, recipe)
    gradient_sq = dz_dx * dz_dx + dz_dy * dz_dy
    slope = np.degrees(np.arctan(np.sqrt(gradient_sq)))

    azimuth = np.radians(recipe.azimuth_deg)
    altitude = np.radians(recipe.altitude_deg)
    # Illumination of the surface normal (-dz/dx, -dz/dy, 1) by the sun vector.
    sun_x = np.sin(azimuth) * np.cos(altitude)
    sun_y = np.cos(azimuth) * np.cos(altitude)
    cos_incidence = (np.sin(altitude) - dz_dx * sun_x - dz_dy * sun_y) / np.sqrt(1.0 + gradient_sq)
    hillshade = 1.0 + 254.0 * np.clip(cos_incidence, 0.0, None)
    if recipe.hillshade_integer:
        hillshade = np.floor(hillshade + 0.5)
    hillshade[centre_missing] = np.nan
    slope[centre_missing] = np.nan
    return hillshade.astype(np.float32), slope.astype(np.float32)
