"""Landslide polygons with exact pixel edges from the mask, and their statistics.

Everything goes through scratch files, so memory does not grow with the scene
or with the size of a polygon: GDAL polygonises the mask into a GeoPackage on
disk, the landslide polygons are burnt back as labels (their feature ids) into
a scratch raster, and one pass over the label and probability rasters, chunk
by chunk, sums each polygon's probabilities. Only three numbers per polygon
are held in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from osgeo import gdal, ogr, osr

gdal.UseExceptions()
ogr.UseExceptions()

LANDSLIDE_VALUE = 1
STATS_CHUNK_PX = 1024
"""Side of the square chunks the statistics pass reads (bounds its memory)."""


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


@dataclass
class _PolygonStats:
    """Per-label sums, counts and maxima, indexed by feature id."""

    total: np.ndarray
    count: np.ndarray
    peak: np.ndarray

    @classmethod
    def empty(cls, labels: int) -> "_PolygonStats":
        return cls(np.zeros(labels + 1), np.zeros(labels + 1, np.int64), np.full(labels + 1, -np.inf))

    def add(self, labels: np.ndarray, values: np.ndarray) -> None:
        """Accumulate the values of labelled pixels (label 0 = none)."""
        inside = labels > 0
        if not inside.any():
            return
        labels, values = labels[inside], values[inside].astype(np.float64)
        size = len(self.count)
        self.total += np.bincount(labels, weights=values, minlength=size)
        self.count += np.bincount(labels, minlength=size)
        np.maximum.at(self.peak, labels, values)


def iter_landslide_polygons(
    mask_path: str,
    probability_path: str,
    min_area_m2: float,
    scratch_dir: str,
    is_cancelled: Callable[[], bool] = lambda: False,
    progress: Callable[[float], None] = lambda fraction: None,
    chunk_px: int = STATS_CHUNK_PX,
) -> Iterator[LandslidePolygon]:
    """Polygonise the landslide pixels (4-connected) of a mask raster.

    Args:
        mask_path: Byte raster, 1 = landslide, 0 = none, 255 = nodata.
        probability_path: Probability raster on the same grid.
        min_area_m2: Polygons smaller than this are dropped.
        scratch_dir: An existing folder for the scratch GeoPackage and label
            raster (removed by the caller).
        is_cancelled: Polled per chunk and per polygon; the iteration stops.
        progress: Receives 0..1 as the stages advance.
        chunk_px: Side of the chunks read by the statistics pass.
    """
    mask = gdal.Open(mask_path)
    srs = osr.SpatialReference(wkt=mask.GetProjection())
    gt = mask.GetGeoTransform()
    pixel_area = abs(gt[1] * gt[5])
    source = ogr.GetDriverByName("GPKG").CreateDataSource(os.path.join(scratch_dir, "polygons.gpkg"))
    layer = source.CreateLayer("polygons", srs=srs, geom_type=ogr.wkbPolygon, options=["SPATIAL_INDEX=NO"])
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    layer.CreateField(ogr.FieldDefn("label", ogr.OFTInteger))
    band = mask.GetRasterBand(1)
    layer.StartTransaction()
    # The band as its own mask: value 0 (no landslide) is skipped entirely.
    gdal.Polygonize(band, band, layer, 0, [], callback=None)
    layer.CommitTransaction()
    if is_cancelled():
        return
    progress(0.3)
    labels_path = os.path.join(scratch_dir, "labels.tif")
    stats = _label_statistics(source, mask, probability_path, labels_path, is_cancelled, chunk_px)
    if stats is None:
        return
    progress(0.7)
    layer.SetAttributeFilter(f"value = {LANDSLIDE_VALUE}")
    total = max(1, layer.GetFeatureCount())
    for index, feature in enumerate(layer, start=1):
        if is_cancelled():
            return
        fid = feature.GetFID()
        geometry = feature.GetGeometryRef()
        area = geometry.GetArea()
        if area + 1e-6 * pixel_area < min_area_m2 or stats.count[fid] == 0:
            continue
        yield LandslidePolygon(
            bytes(geometry.ExportToIsoWkb()), area, float(stats.total[fid] / stats.count[fid]), float(stats.peak[fid])
        )
        if index % 1000 == 0:
            progress(0.7 + 0.3 * index / total)
    progress(1.0)


def _label_statistics(source, mask: gdal.Dataset, probability_path: str, labels_path: str,
                      is_cancelled: Callable[[], bool], chunk_px: int):
    """Burn each landslide polygon's feature id into a label raster and sum probabilities per id.

    Returns None when cancelled.
    """
    width, height = mask.RasterXSize, mask.RasterYSize
    labels = gdal.GetDriverByName("GTiff").Create(
        labels_path, width, height, 1, gdal.GDT_Int32,
        options=["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "SPARSE_OK=TRUE", "BIGTIFF=IF_SAFER"],
    )
    labels.SetGeoTransform(mask.GetGeoTransform())
    labels.SetProjection(mask.GetProjection())
    # Each landslide polygon's label is its feature id (1 upwards in a new GeoPackage layer, so 0 stays
    # "no landslide"), stored in a field and burnt from it. No ExecuteSQL: in a process that has loaded
    # TensorFlow (the trainer's evaluation maps in-process), OGR's SQL on a GeoPackage crashes.
    layer = source.GetLayer(0)
    layer.SetAttributeFilter(f"value = {LANDSLIDE_VALUE}")
    highest = 0
    layer.StartTransaction()
    for feature in layer:
        fid = feature.GetFID()
        feature.SetField("label", fid)
        layer.SetFeature(feature)
        highest = max(highest, fid)
    layer.CommitTransaction()
    gdal.RasterizeLayer(labels, [1], layer, options=["ATTRIBUTE=label"])
    layer.SetAttributeFilter(None)
    stats = _PolygonStats.empty(highest)
    label_band = labels.GetRasterBand(1)
    probability_ds = gdal.Open(probability_path)  # keep the dataset alive while its band is read
    probability = probability_ds.GetRasterBand(1)
    for row in range(0, height, chunk_px):
        for col in range(0, width, chunk_px):
            if is_cancelled():
                return None
            rows, cols = min(chunk_px, height - row), min(chunk_px, width - col)
            stats.add(label_band.ReadAsArray(col, row, cols, rows), probability.ReadAsArray(col, row, cols, rows))
    return stats


POLYGON_FIELDS = (("id", ogr.OFTInteger), ("area_m2", ogr.OFTReal), ("mean_prob", ogr.OFTReal), ("max_prob", ogr.OFTReal))
"""Attributes of the landslide polygon output, in order."""


class PolygonFileWriter:
    """Landslide polygons written to a GeoPackage (any file name: the run's partial name) in one transaction.

    Args:
        path: The file to create (replaced if it exists).
        crs_wkt: The polygons' CRS (the grid's).
        layer_name: Name of the layer (the final file's name without extension).
    """

    def __init__(self, path: str, crs_wkt: str, layer_name: str):
        self.path = path
        self.count = 0
        driver = ogr.GetDriverByName("GPKG")
        gdal.PushErrorHandler("CPLQuietErrorHandler")  # "extension should be gpkg": it is, once committed
        try:
            self._source = driver.CreateDataSource(path)
        finally:
            gdal.PopErrorHandler()
        self._layer = self._source.CreateLayer(layer_name, srs=osr.SpatialReference(wkt=crs_wkt),
                                               geom_type=ogr.wkbPolygon)
        for name, kind in POLYGON_FIELDS:
            self._layer.CreateField(ogr.FieldDefn(name, kind))
        self._definition = self._layer.GetLayerDefn()
        self._layer.StartTransaction()

    def add(self, polygon: LandslidePolygon) -> None:
        """Write one polygon; its ``id`` counts from 1."""
        self.count += 1
        feature = ogr.Feature(self._definition)
        feature.SetGeometry(ogr.CreateGeometryFromWkb(polygon.wkb))
        for name, value in zip(("id", "area_m2", "mean_prob", "max_prob"),
                               (self.count, polygon.area_m2, polygon.mean_prob, polygon.max_prob)):
            feature.SetField(name, value)
        self._layer.CreateFeature(feature)

    def close(self) -> None:
        """Commit and close the file (it can then be renamed)."""
        if self._source is not None:
            self._layer.CommitTransaction()
            self._definition = None
            self._layer = None
            self._source = None

    def discard(self) -> None:
        """Close without committing (the caller removes the file)."""
        self._definition = None
        self._layer = None
        self._source = None
