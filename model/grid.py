"""The target grid and reading any input onto it, window by window, by georeference.

Every input (pre image, post image, DEM, cloud/snow mask) is warped with GDAL
onto one metric grid at the model's ground resolution: bilinear for images
and the DEM, nearest for masks. Nothing is ever resampled by array shape.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, osr

from .errors import GridError, InputDataError

gdal.UseExceptions()
osr.UseExceptions()

Bounds = Tuple[float, float, float, float]  # x_min, y_min, x_max, y_max


@dataclass(frozen=True)
class RasterInput:
    """A raster file (anything GDAL opens) and the bands to read, 1-based."""

    path: str
    bands: Tuple[int, ...] = (1,)


@dataclass(frozen=True)
class Extent:
    """A rectangle in some CRS (WKT or any string ``osr`` understands)."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float
    crs: str


@dataclass(frozen=True)
class Grid:
    """A north-up grid in a metric CRS.

    Attributes:
        crs_wkt: The grid's CRS.
        x_min: West edge.
        y_max: North edge.
        gsd_m: Pixel size in metres (square pixels).
        width_px: Columns.
        height_px: Rows.
    """

    crs_wkt: str
    x_min: float
    y_max: float
    gsd_m: float
    width_px: int
    height_px: int

    @property
    def geotransform(self) -> Tuple[float, float, float, float, float, float]:
        """GDAL geotransform."""
        return (self.x_min, self.gsd_m, 0.0, self.y_max, 0.0, -self.gsd_m)

    @property
    def area_km2(self) -> float:
        """Area covered by the grid."""
        return self.width_px * self.height_px * self.gsd_m**2 / 1e6

    def window_bounds(self, row_px: int, col_px: int, height_px: int, width_px: int) -> Bounds:
        """Georeferenced bounds of a pixel window (which may reach past the grid)."""
        x0 = self.x_min + col_px * self.gsd_m
        y1 = self.y_max - row_px * self.gsd_m
        return (x0, y1 - height_px * self.gsd_m, x0 + width_px * self.gsd_m, y1)


def open_raster(path: str) -> gdal.Dataset:
    """Open a raster or raise :class:`InputDataError` naming it."""
    try:
        dataset = gdal.Open(path)
    except RuntimeError as exc:
        raise InputDataError(f"Cannot open raster {path}: {exc}") from exc
    if dataset is None:
        raise InputDataError(f"Cannot open raster {path}.")
    return dataset


def raster_srs(dataset: gdal.Dataset, path: str) -> osr.SpatialReference:
    """The dataset's CRS; a raster without one cannot be placed on a grid."""
    wkt = dataset.GetProjection()
    if not wkt:
        raise InputDataError(f"Raster {path} has no coordinate reference system; assign one first.")
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def srs_from_user_input(text: str) -> osr.SpatialReference:
    """An ``osr.SpatialReference`` from WKT, ``EPSG:n`` or a PROJ string."""
    srs = osr.SpatialReference()
    try:
        srs.SetFromUserInput(text)
    except RuntimeError as exc:
        raise GridError(f"Unknown coordinate reference system: {text[:80]}") from exc
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def check_bands(dataset: gdal.Dataset, path: str, bands: Sequence[int]) -> None:
    """Refuse band numbers the raster does not have."""
    count = dataset.RasterCount
    for band in bands:
        if not 1 <= band <= count:
            raise InputDataError(f"Band {band} does not exist in {path}, which has {count} band(s).")


def dataset_bounds(dataset: gdal.Dataset) -> Bounds:
    """Bounds of a dataset in its own CRS."""
    gt = dataset.GetGeoTransform()
    xs = [gt[0] + gt[1] * c + gt[2] * r for c in (0, dataset.RasterXSize) for r in (0, dataset.RasterYSize)]
    ys = [gt[3] + gt[4] * c + gt[5] * r for c in (0, dataset.RasterXSize) for r in (0, dataset.RasterYSize)]
    return (min(xs), min(ys), max(xs), max(ys))


def transform_bounds(bounds: Bounds, source: osr.SpatialReference, target: osr.SpatialReference) -> Bounds:
    """Bounding box of ``bounds`` reprojected, with densified edges."""
    if source.IsSame(target):
        return bounds
    transform = osr.CoordinateTransformation(source, target)
    x0, y0, x1, y1 = bounds
    steps = 21
    points = []
    for i in range(steps):
        t = i / (steps - 1)
        x = x0 + (x1 - x0) * t
        y = y0 + (y1 - y0) * t
        points += [(x, y0), (x, y1), (x0, y), (x1, y)]
    out = [transform.TransformPoint(px, py)[:2] for px, py in points]
    xs = [p[0] for p in out if math.isfinite(p[0])]
    ys = [p[1] for p in out if math.isfinite(p[1])]
    if not xs or not ys:
        raise GridError("Input bounds cannot be transformed to the target coordinate system.")
    return (min(xs), min(ys), max(xs), max(ys))


def is_metric_projected(srs: osr.SpatialReference) -> bool:
    """True for a projected CRS whose linear unit is the metre."""
    return bool(srs.IsProjected()) and abs(srs.GetLinearUnits() - 1.0) < 1e-9


def utm_srs_for(lon: float, lat: float) -> osr.SpatialReference:
    """WGS 84 / UTM zone containing a point."""
    zone = min(60, max(1, int(math.floor((lon + 180.0) / 6.0)) + 1))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG((32600 if lat >= 0 else 32700) + zone)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def choose_metric_srs(post_path: str) -> osr.SpatialReference:
    """The post image's CRS when projected in metres, else the UTM zone of its centre."""
    dataset = open_raster(post_path)
    srs = raster_srs(dataset, post_path)
    if is_metric_projected(srs):
        return srs
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    wgs84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    x0, y0, x1, y1 = transform_bounds(dataset_bounds(dataset), srs, wgs84)
    return utm_srs_for((x0 + x1) / 2, (y0 + y1) / 2)


def footprint_in(path: str, target: osr.SpatialReference) -> Bounds:
    """Bounds of a raster in ``target``."""
    dataset = open_raster(path)
    return transform_bounds(dataset_bounds(dataset), raster_srs(dataset, path), target)


def intersect(a: Bounds, b: Bounds) -> Optional[Bounds]:
    """Intersection of two boxes, or None when they do not overlap."""
    box = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return box if box[0] < box[2] and box[1] < box[3] else None


def build_grid(
    rasters: Sequence[Tuple[str, str]],
    post_path: str,
    gsd_m: float,
    extent: Optional[Extent] = None,
) -> Grid:
    """The target grid over the inputs' intersection (and the extent, if given).

    Pixel edges are snapped to multiples of ``gsd_m`` in the target CRS so that
    repeated runs over overlapping areas share one lattice.

    Args:
        rasters: ``(label, path)`` of every raster that must cover the grid.
        post_path: The post image, whose CRS is preferred.
        gsd_m: Pixel size in metres.
        extent: Optional area of interest.

    Raises:
        GridError: Inputs or extent do not overlap, or the overlap is smaller
            than one pixel.
    """
    srs = choose_metric_srs(post_path)
    box: Optional[Bounds] = None
    labels = []
    for label, path in rasters:
        footprint = footprint_in(path, srs)
        labels.append(label)
        box = footprint if box is None else intersect(box, footprint)
        if box is None:
            raise GridError(f"The inputs do not overlap: {label} lies outside {', '.join(labels[:-1])}.")
    assert box is not None
    if extent is not None:
        box = intersect(box, transform_bounds(
            (extent.x_min, extent.y_min, extent.x_max, extent.y_max), srs_from_user_input(extent.crs), srs))
        if box is None:
            raise GridError("The extent does not overlap the area covered by all inputs.")
    x_min = math.ceil(box[0] / gsd_m - 1e-6) * gsd_m
    y_min = math.ceil(box[1] / gsd_m - 1e-6) * gsd_m
    x_max = math.floor(box[2] / gsd_m + 1e-6) * gsd_m
    y_max = math.floor(box[3] / gsd_m + 1e-6) * gsd_m
    width, height = int(round((x_max - x_min) / gsd_m)), int(round((y_max - y_min) / gsd_m))
    if width < 1 or height < 1:
        raise GridError(f"The common area of the inputs is smaller than one {gsd_m:g} m pixel.")
    return Grid(srs.ExportToWkt(), x_min, y_max, gsd_m, width, height)


class WindowReader:
    """Reads chosen bands of one raster onto windows of a :class:`Grid`.

    Values come back as float32 ``(bands, rows, cols)`` with NaN wherever the
    source has nodata, a masked pixel, or no coverage.
    """

    def __init__(self, source: RasterInput, grid: Grid, resampling: str = "bilinear"):
        dataset = open_raster(source.path)
        raster_srs(dataset, source.path)
        check_bands(dataset, source.path, source.bands)
        self.source = source
        self._grid = grid
        self._resampling = resampling
        self._dataset = gdal.Translate("", dataset, format="VRT", bandList=list(source.bands))

    def read(self, row_px: int, col_px: int, height_px: int, width_px: int) -> np.ndarray:
        """Warp the window starting at ``(row_px, col_px)`` of the grid."""
        bounds = self._grid.window_bounds(row_px, col_px, height_px, width_px)
        try:
            warped = gdal.Warp(
                "",
                self._dataset,
                format="MEM",
                outputBounds=bounds,
                width=width_px,
                height=height_px,
                dstSRS=self._grid.crs_wkt,
                resampleAlg=self._resampling,
                outputType=gdal.GDT_Float32,
                dstNodata=float("nan"),
                errorThreshold=0,
                warpOptions=["INIT_DEST=NO_DATA"],
            )
        except RuntimeError as exc:
            raise InputDataError(f"Cannot read {self.source.path} onto the target grid: {exc}") from exc
        data = warped.ReadAsArray()
        return np.asarray(data, dtype=np.float32).reshape(len(self.source.bands), height_px, width_px)

    @property
    def data_type(self) -> int:
        """GDAL data type of the first selected band."""
        return self._dataset.GetRasterBand(1).DataType


@contextlib.contextmanager
def gdal_cache_capped(limit_mb: int):
    """Lower GDAL's block-cache limit during a run; restore it afterwards."""
    previous = gdal.GetCacheMax()
    limit = int(limit_mb) * 1024 * 1024
    if 0 < limit < previous:
        gdal.SetCacheMax(limit)
    try:
        yield
    finally:
        gdal.SetCacheMax(previous)
