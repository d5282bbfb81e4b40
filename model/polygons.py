"""Landslide polygons with exact pixel edges from the mask, and their statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np
from osgeo import gdal, ogr, osr

gdal.UseExceptions()
ogr.UseExceptions()

LANDSLIDE_VALUE = 1


@dataclass(frozen=True)
class LandslidePolygon:
    """One mapped landslide.

    Attributes:
        wkb: Polygon geometry (ISO WKB) in the grid's CRS.
        area_m2: Area in square metres (pixel count x pixel area).
        mean_prob: Mean probability of its pixels.
        max_prob: Highest probability of its pixels.
    """

    wkb: bytes
    area_m2: float
    mean_prob: float
    max_prob: float


def iter_landslide_polygons(
    mask_path: str,
    probability_path: str,
    min_area_m2: float,
    is_cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[LandslidePolygon]:
    """Polygonise the landslide pixels (4-connected) of a mask raster.

    Args:
        mask_path: Byte raster, 1 = landslide, 0 = none, 255 = nodata.
        probability_path: Probability raster on the same grid.
        min_area_m2: Polygons smaller than this are dropped.
        is_cancelled: Polled once per polygon.
    """
    mask = gdal.Open(mask_path)
    band = mask.GetRasterBand(1)
    srs = osr.SpatialReference(wkt=mask.GetProjection())
    layer_ds = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = layer_ds.CreateLayer("landslides", srs=srs, geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    # The band as its own mask: value 0 (no landslide) is skipped entirely.
    gdal.Polygonize(band, band, layer, 0, [], callback=None)
    probability_ds = gdal.Open(probability_path)
    probability = probability_ds.GetRasterBand(1)
    gt = mask.GetGeoTransform()
    pixel_area = abs(gt[1] * gt[5])
    for feature in layer:
        if is_cancelled():
            return
        if feature.GetField("value") != LANDSLIDE_VALUE:
            continue
        geometry = feature.GetGeometryRef()
        area = geometry.GetArea()
        if area + 1e-6 * pixel_area < min_area_m2:
            continue
        stats = _probability_stats(geometry, probability, gt, srs)
        if stats is None:
            continue
        yield LandslidePolygon(bytes(geometry.ExportToIsoWkb()), area, stats[0], stats[1])


def _probability_stats(geometry: ogr.Geometry, band: gdal.Band, gt, srs: osr.SpatialReference) -> Optional[tuple]:
    """Mean and max probability inside ``geometry`` (read over its bounding box only)."""
    x0, x1, y0, y1 = geometry.GetEnvelope()
    col0 = int(math.floor((x0 - gt[0]) / gt[1] + 1e-6))
    col1 = int(math.ceil((x1 - gt[0]) / gt[1] - 1e-6))
    row0 = int(math.floor((y1 - gt[3]) / gt[5] + 1e-6))
    row1 = int(math.ceil((y0 - gt[3]) / gt[5] - 1e-6))
    cols, rows = col1 - col0, row1 - row0
    values = band.ReadAsArray(col0, row0, cols, rows).astype(np.float64)
    target = gdal.GetDriverByName("MEM").Create("", cols, rows, 1, gdal.GDT_Byte)
    target.SetGeoTransform((gt[0] + col0 * gt[1], gt[1], 0.0, gt[3] + row0 * gt[5], 0.0, gt[5]))
    target.SetProjection(srs.ExportToWkt())
    source = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = source.CreateLayer("one", srs=srs, geom_type=ogr.wkbPolygon)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(geometry)
    layer.CreateFeature(feature)
    gdal.RasterizeLayer(target, [1], layer, burn_values=[1])
    inside = values[target.ReadAsArray() == 1]
    if inside.size == 0:
        return None
    return float(inside.mean()), float(inside.max())
