"""Small synthetic event scenes written as GeoTIFFs for tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, ogr, osr

gdal.UseExceptions()


def srs_wkt(epsg: int) -> str:
    """WKT of an EPSG code."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return srs.ExportToWkt()


def write_raster(path: str, array: np.ndarray, geotransform: Sequence[float], epsg: Optional[int],
                 data_type: int = gdal.GDT_Byte, nodata: Optional[float] = None) -> str:
    """Write a (bands, rows, cols) or (rows, cols) array as a GeoTIFF."""
    array = array if array.ndim == 3 else array[None]
    dataset = gdal.GetDriverByName("GTiff").Create(path, array.shape[2], array.shape[1], array.shape[0], data_type)
    dataset.SetGeoTransform(tuple(geotransform))
    if epsg is not None:
        dataset.SetProjection(srs_wkt(epsg))
    for index, band_values in enumerate(array, start=1):
        band = dataset.GetRasterBand(index)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        band.WriteArray(band_values)
    dataset = None
    return path


def write_polygons(path: str, polygons_wkt: Sequence[str], epsg: int, layer: str = "polygons") -> str:
    """Write polygons (WKT) to a GeoPackage."""
    driver = ogr.GetDriverByName("GPKG")
    if os.path.exists(path):
        driver.DeleteDataSource(path)
    source = driver.CreateDataSource(path)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    out = source.CreateLayer(layer, srs=srs, geom_type=ogr.wkbPolygon)
    for wkt in polygons_wkt:
        feature = ogr.Feature(out.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        out.CreateFeature(feature)
    source = None
    return path


@dataclass
class EventScene:
    """Paths and truths of a synthetic event.

    ``slides`` are (row, col, height, width) boxes of pixels where the post
    image's red band rises from 60 to 180; the red-difference model maps
    exactly those pixels.
    """

    pre: str
    post: str
    dem: str
    geotransform: Tuple[float, ...]
    epsg: int
    shape: Tuple[int, int]
    slides: List[Tuple[int, int, int, int]]
    pre_red: np.ndarray
    post_red: np.ndarray

    def expected_mask(self) -> np.ndarray:
        """1 where a slide is, else 0."""
        mask = np.zeros(self.shape, np.uint8)
        for r, c, h, w in self.slides:
            mask[r : r + h, c : c + w] = 1
        return mask


def make_event_scene(folder: str, rows: int = 100, cols: int = 120, gsd: float = 10.0, epsg: int = 32633,
                     origin: Tuple[float, float] = (500000.0, 5200000.0), seed: int = 0,
                     slides: Optional[List[Tuple[int, int, int, int]]] = None) -> EventScene:
    """An 8-bit pre/post RGB pair and a DEM on one grid aligned to ``gsd``."""
    rng = np.random.default_rng(seed)
    slides = slides if slides is not None else [(10, 12, 6, 5), (40, 70, 12, 20), (80, 5, 3, 3), (95, 110, 5, 10)]
    pre = rng.integers(30, 90, (3, rows, cols)).astype(np.uint8)
    pre[0] = 60
    post = pre.copy()
    post[0] = 40
    for r, c, h, w in slides:
        post[0, r : r + h, c : c + w] = 180
    y, x = np.mgrid[0:rows, 0:cols]
    dem = (400 + 3.0 * x + 20 * np.sin(y / 9.0)).astype(np.float32)
    gt = (origin[0], gsd, 0.0, origin[1], 0.0, -gsd)
    os.makedirs(folder, exist_ok=True)
    paths = [
        write_raster(os.path.join(folder, "pre.tif"), pre, gt, epsg),
        write_raster(os.path.join(folder, "post.tif"), post, gt, epsg),
        write_raster(os.path.join(folder, "dem.tif"), dem, gt, epsg, gdal.GDT_Float32, nodata=-9999),
    ]
    return EventScene(*paths, gt, epsg, (rows, cols), slides, pre[0].astype(float), post[0].astype(float))
