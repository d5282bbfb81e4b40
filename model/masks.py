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
    if layer_srs is None:
        raise InputDataError(f"The {what} {where} has no coordinate reference system.")
    layer_srs = layer_srs.Clone()
    layer_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return dataset, layer, layer_srs


def transformation_to_grid(layer_srs: osr.SpatialReference, grid: Grid) -> Optional[osr.CoordinateTransformation]:
    """Transformation from ``layer_srs`` to the grid's CRS, or None when they are the same."""
    grid_srs = osr.SpatialReference(wkt=grid.crs_wkt)
    grid_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return None if layer_srs.IsSame(grid_srs) else osr.CoordinateTransformation(layer_srs, grid_srs)


class RasterMask:
    """A mask raster: any non-zero value masks a pixel; nodata masks nothing."""

    def __init__(self, source: RasterInput, grid: Grid):
        self._reader = WindowReader(source, grid, resampling="near")

    def read(self, row_px: int, col_px: int, height_px: int, width_px: int) -> np.ndarray:
        """Boolean window, True where masked."""
        values = self._reader.read(row_px, col_px, height_px, width_px)[0]
        return np.nan_to_num(values, nan=0.0) != 0


class PolygonMask:
    """Mask polygons, reprojected once to the grid CRS and burnt per window."""

    def __init__(self, source: VectorInput, grid: Grid):
        _, layer, layer_srs = open_polygon_layer(source, "mask polygons")
        transform = transformation_to_grid(layer_srs, grid)
        grid_srs = osr.SpatialReference(wkt=grid.crs_wkt)
        self._grid = grid
        self._store = ogr.GetDriverByName("Memory").CreateDataSource("")
        self._layer = self._store.CreateLayer("mask", srs=grid_srs, geom_type=ogr.wkbMultiPolygon)
        for feature in layer:
            geometry = feature.GetGeometryRef()
            if geometry is None:
                continue
            geometry = geometry.Clone()
            if transform is not None:
                geometry.Transform(transform)
            out = ogr.Feature(self._layer.GetLayerDefn())
            out.SetGeometry(geometry)
            self._layer.CreateFeature(out)

    def read(self, row_px: int, col_px: int, height_px: int, width_px: int) -> np.ndarray:
        """Boolean window, True where a polygon covers the pixel centre."""
        x0, _, _, y1 = self._grid.window_bounds(row_px, col_px, height_px, width_px)
        target = gdal.GetDriverByName("MEM").Create("", width_px, height_px, 1, gdal.GDT_Byte)
        target.SetGeoTransform((x0, self._grid.gsd_m, 0.0, y1, 0.0, -self._grid.gsd_m))
        target.SetProjection(self._grid.crs_wkt)
        gdal.RasterizeLayer(target, [1], self._layer, burn_values=[1])
        return target.ReadAsArray() == 1
