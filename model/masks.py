"""Cloud/snow masks given as a raster or as polygons, read onto grid windows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from osgeo import gdal, ogr, osr

from .errors import InputDataError
from .grid import Grid, RasterInput, WindowReader

gdal.UseExceptions()
ogr.UseExceptions()


UNDEFINED_SRS_NAMES = ("undefined geographic srs", "undefined cartesian srs")
"""What OGR reports for a GeoPackage layer stored without a CRS (srs_id 0 or -1)."""


@dataclass(frozen=True)
class VectorInput:
    """A vector file and optionally one of its layers."""

    path: str
    layer: Optional[str] = None


def open_polygon_layer(source: VectorInput, what: str):
    """Open a vector layer that must have a CRS.

    Returns:
        ``(dataset, layer, layer_srs)``; keep the dataset referenced while the
        layer is used. ``layer_srs`` uses the traditional x/y axis order.

    Raises:
        InputDataError: Naming ``what``, the file and the problem.
    """
    where = source.path + (f" (layer '{source.layer}')" if source.layer else "")
    try:
        dataset = ogr.Open(source.path)
    except RuntimeError as exc:
        raise InputDataError(f"Cannot open the {what} {where}: {exc}") from exc
    if dataset is None:
        raise InputDataError(f"Cannot open the {what} {where}.")
    layer = dataset.GetLayerByName(source.layer) if source.layer else dataset.GetLayer(0)
    if layer is None:
        raise InputDataError(f"The {what} {source.path} has no layer '{source.layer}'.")
    layer_srs = layer.GetSpatialRef()
    if layer_srs is None or (layer_srs.GetName() or "").lower() in UNDEFINED_SRS_NAMES:
        raise InputDataError(f"The {what} {where} has no coordinate reference system.")
    layer_srs = layer_srs.Clone()
    layer_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return dataset, layer, layer_srs


def transformation_to_grid(layer_srs: osr.SpatialReference, grid: Grid) -> Optional[osr.CoordinateTransformation]:
    """Transformation from ``layer_srs`` to the grid's CRS, or None when they are the same."""
    grid_srs = osr.SpatialReference(wkt=grid.crs_wkt)
    grid_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    if layer_srs.IsSame(grid_srs):
        return None
    try:
        return osr.CoordinateTransformation(layer_srs, grid_srs)
    except (RuntimeError, TypeError) as exc:
        raise InputDataError(f"No transformation from {layer_srs.GetName()} to the grid's CRS {grid_srs.GetName()}: "
                             f"{exc}") from exc


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

    ``grid`` is anything with ``crs_wkt`` and a north-up ``geotransform``: a
    :class:`~model.grid.Grid`, or the evaluation grid of :mod:`model.evaluation`.
    """

    def __init__(self, source: VectorInput, grid: Grid, what: str = "mask polygons"):
        _, layer, layer_srs = open_polygon_layer(source, what)
        try:
            transform = transformation_to_grid(layer_srs, grid)
        except InputDataError as exc:
            raise InputDataError(f"The {what} {source.path} cannot be placed on the grid. {exc}") from exc
        grid_srs = osr.SpatialReference(wkt=grid.crs_wkt)
        self._grid = grid
        self._store = ogr.GetDriverByName("Memory").CreateDataSource("")
        self._layer = self._store.CreateLayer("mask", srs=grid_srs, geom_type=ogr.wkbMultiPolygon)
        self.count = 0
        for feature in layer:
            geometry = feature.GetGeometryRef()
            if geometry is None or geometry.IsEmpty():
                continue
            geometry = geometry.Clone()
            if transform is not None:
                try:
                    geometry.Transform(transform)
                except RuntimeError as exc:
                    raise InputDataError(
                        f"A polygon of the {what} {source.path} cannot be transformed to the grid's "
                        f"coordinate reference system: {exc}") from exc
            out = ogr.Feature(self._layer.GetLayerDefn())
            out.SetGeometry(geometry)
            self._layer.CreateFeature(out)
            self.count += 1
        self._extent = self._layer.GetExtent() if self.count else None  # x_min, x_max, y_min, y_max

    def read(self, row_px: int, col_px: int, height_px: int, width_px: int) -> np.ndarray:
        """Boolean window, True where a polygon covers the pixel centre."""
        origin_x, size_x, _, origin_y, _, size_y = self._grid.geotransform
        x0 = origin_x + col_px * size_x
        y1 = origin_y + row_px * size_y
        x1, y0 = x0 + width_px * size_x, y1 + height_px * size_y
        if self._extent is None or self._extent[0] > x1 or self._extent[1] < x0 \
                or self._extent[2] > y1 or self._extent[3] < y0:
            return np.zeros((height_px, width_px), dtype=bool)
        target = gdal.GetDriverByName("MEM").Create("", width_px, height_px, 1, gdal.GDT_Byte)
        target.SetGeoTransform((x0, size_x, 0.0, y1, 0.0, size_y))
        target.SetProjection(self._grid.crs_wkt)
        self._layer.SetSpatialFilterRect(x0, y0, x1, y1)  # only the polygons near this window
        try:
            gdal.RasterizeLayer(target, [1], self._layer, burn_values=[1])
        finally:
            self._layer.SetSpatialFilter(None)
        return target.ReadAsArray() == 1
