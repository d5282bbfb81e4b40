"""Cloud/snow masks given as a raster or as polygons, read onto grid windows."""

from __future__ import annotations

import numpy as np
from osgeo import gdal, ogr

from .grid import Grid, RasterInput, WindowReader
from .vectors import VectorInput, open_polygon_layer, read_polygons, transformation_to_grid  # noqa: F401 (re-exported)

gdal.UseExceptions()
ogr.UseExceptions()


class RasterMask:
    """A mask raster: any non-zero value masks a pixel; nodata masks nothing."""

    def __init__(self, source: RasterInput, grid: Grid):
        self._reader = WindowReader(source, grid, resampling="near")

    def read(self, row_px: int, col_px: int, height_px: int, width_px: int) -> np.ndarray:
        """Boolean window, True where masked."""
        values = self._reader.read(row_px, col_px, height_px, width_px)[0]
        return np.nan_to_num(values, nan=0.0) != 0


class PolygonMask:
    """Polygons (cloud/snow mask, inventory, evaluation area...), reprojected once to the grid CRS
    and burnt per window with the pixel-centre rule.

    ``grid`` is a :class:`~model.grid.Grid` (mapping's square one or an evaluation's, rectangular pixels allowed).
    """

    def __init__(self, source: VectorInput, grid: Grid, what: str = "mask polygons"):
        self._grid = grid
        self._polygons = read_polygons(source, grid, what)  # the rules of model.vectors
        self.count = self._polygons.total

    def read(self, row_px: int, col_px: int, height_px: int, width_px: int) -> np.ndarray:
        """Boolean window, True where a polygon covers the pixel centre."""
        return self._polygons.burn(self._grid, row_px, col_px, height_px, width_px)
