"""The target grid and reading any input onto it, window by window, by georeference.

Every input (pre image, post image, DEM, cloud/snow mask) is warped with GDAL
onto one metric grid at the model's ground resolution: bilinear for images
and the DEM, nearest for masks. Nothing is ever resampled by array shape.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

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
    """A north-up pixel grid: the one grid class of the project.

    Mapping builds square pixels in a CRS in true ground metres
    (:func:`build_grid`); evaluation also reads a predicted mask on its own
    lattice, whose pixels may be rectangular and whose CRS may be anything.

    Attributes:
        crs_wkt: The grid's CRS.
        x_min: West edge.
        y_max: North edge.
        pixel_width: Pixel width in CRS units.
        pixel_height: Pixel height in CRS units (positive).
        width_px: Columns.
        height_px: Rows.
    """

    crs_wkt: str
    x_min: float
    y_max: float
    pixel_width: float
    pixel_height: float
    width_px: int
    height_px: int

    @classmethod
    def square(cls, crs_wkt: str, x_min: float, y_max: float, gsd_m: float, width_px: int, height_px: int) -> "Grid":
        """A grid of square ``gsd_m`` pixels."""
        return cls(crs_wkt, x_min, y_max, gsd_m, gsd_m, width_px, height_px)

    @property
    def gsd_m(self) -> float:
        """Pixel size of a square-pixel grid (mapping's grids are square)."""
        if not math.isclose(self.pixel_width, self.pixel_height, rel_tol=1e-9):
            raise GridError(f"The grid has rectangular pixels ({self.pixel_size_label()}); a square pixel size is needed.")
        return self.pixel_width

    @property
    def geotransform(self) -> Tuple[float, float, float, float, float, float]:
        """GDAL geotransform."""
        return (self.x_min, self.pixel_width, 0.0, self.y_max, 0.0, -self.pixel_height)

    @property
    def bounds(self) -> Bounds:
        """``(x_min, y_min, x_max, y_max)`` of the whole grid."""
        return self.window_bounds(0, 0, self.height_px, self.width_px)

    @property
    def area_km2(self) -> float:
        """Area covered by the grid, in the plane of its CRS."""
        return self.width_px * self.height_px * self.pixel_width * self.pixel_height / 1e6

    def window_bounds(self, row_px: int, col_px: int, height_px: int, width_px: int) -> Bounds:
        """Georeferenced bounds of a pixel window (which may reach past the grid)."""
        x0 = self.x_min + col_px * self.pixel_width
        y1 = self.y_max - row_px * self.pixel_height
        return (x0, y1 - height_px * self.pixel_height, x0 + width_px * self.pixel_width, y1)

    def srs(self) -> osr.SpatialReference:
        """The grid's CRS, x/y axis order."""
        srs = osr.SpatialReference(wkt=self.crs_wkt)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        return srs

    def crs_label(self) -> str:
        """``AUTHORITY:CODE`` when the CRS has one, else its name."""
        return crs_label(self.srs())

    def pixel_size_label(self) -> str:
        """Pixel width x height with the CRS's unit, e.g. ``10 x 10 m``."""
        srs = self.srs()
        if srs.IsGeographic():
            unit = "°"
        else:
            unit = "m" if abs((srs.GetLinearUnits() or 1.0) - 1.0) < 1e-9 else (srs.GetLinearUnitsName() or "units")
        return f"{self.pixel_width:g} x {self.pixel_height:g} {unit}"

    def row_pixel_areas_m2(self, row_px: int, rows: int) -> np.ndarray:
        """True ground area in m² of one pixel of each of ``rows`` rows from ``row_px``.

        In a geographic CRS it is the exact ellipsoidal area of the pixel's
        latitude band. In a projected CRS that keeps true ground distance
        within :data:`TRUE_SCALE_TOLERANCE` over the grid, every pixel has its
        plane area (in metres); in one that does not (Web Mercator...), the
        plane area is corrected by the projection's local area scale, sampled
        along each row.
        """
        srs = self.srs()
        if not srs.IsGeographic():
            unit = srs.GetLinearUnits() or 1.0
            plane = self.pixel_width * self.pixel_height * unit * unit
            if scale_error(srs, self.bounds) <= TRUE_SCALE_TOLERANCE:
                return np.full(rows, plane, dtype=np.float64)
            tops = self.y_max - (row_px + np.arange(rows, dtype=np.float64) + 0.5) * self.pixel_height
            columns = self.x_min + (np.arange(5) + 0.5) / 5 * self.width_px * self.pixel_width
            xs, ys = np.meshgrid(columns, tops)
            factors = ground_scale(srs, xs.ravel(), ys.ravel())[2].reshape(xs.shape)
            return plane * np.nanmean(factors, axis=1)
        radians = srs.GetAngularUnits() or math.pi / 180.0
        a = srs.GetSemiMajor()
        inverse_flattening = srs.GetInvFlattening()
        flattening = 1.0 / inverse_flattening if inverse_flattening > 0 else 0.0
        e2 = flattening * (2.0 - flattening)
        tops = self.y_max - (row_px + np.arange(rows, dtype=np.float64)) * self.pixel_height
        q_top = _authalic_q(tops * radians, e2)
        q_bottom = _authalic_q((tops - self.pixel_height) * radians, e2)
        return 0.5 * a * a * abs(self.pixel_width * radians) * np.abs(q_top - q_bottom)


def _authalic_q(latitude: np.ndarray, e2: float) -> np.ndarray:
    """Snyder's q(phi): the area of the zone from the equator to ``latitude`` is a²/2 · Δλ · q."""
    latitude = np.clip(latitude, -math.pi / 2, math.pi / 2)
    sine = np.sin(latitude)
    if e2 <= 0.0:
        return 2.0 * sine
    e = math.sqrt(e2)
    return (1.0 - e2) * (sine / (1.0 - e2 * sine * sine) - np.log((1.0 - e * sine) / (1.0 + e * sine)) / (2.0 * e))


def crs_label(srs: osr.SpatialReference) -> str:
    """``AUTHORITY:CODE`` when the CRS has one, else its name."""
    srs = srs.Clone()
    name, code = srs.GetAuthorityName(None), srs.GetAuthorityCode(None)
    if not (name and code):
        try:
            srs.AutoIdentifyEPSG()
            name, code = srs.GetAuthorityName(None), srs.GetAuthorityCode(None)
        except RuntimeError:
            pass
    return f"{name}:{code}" if name and code else (srs.GetName() or "unnamed CRS")


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


TRUE_SCALE_TOLERANCE = 0.01
"""A CRS whose distances differ from true ground distance by more than this
fraction somewhere over the scene is not used as the grid's CRS."""


def wgs84() -> osr.SpatialReference:
    """WGS 84 longitude/latitude, x/y axis order."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def check_geographic_bounds(bounds: Bounds, srs: osr.SpatialReference, what: str) -> Bounds:
    """Refuse geographic bounds outside ±90° of latitude (swapped axes) or degenerate; clip longitudes.

    Returns the bounds with latitudes clipped to ±90° and longitudes to ±180°
    (a raster that goes round the globe more than once still covers it once).
    """
    x0, y0, x1, y1 = bounds
    if not all(math.isfinite(v) for v in bounds) or not (x0 < x1 and y0 < y1):
        raise GridError(f"{_capital(what)} has an empty or inverted extent ({x0:g}, {y0:g}, {x1:g}, {y1:g}).")
    if not srs.IsGeographic():
        return bounds
    if y0 < -90.0 - 1e-6 or y1 > 90.0 + 1e-6:
        raise GridError(
            f"{_capital(what)} reaches latitude {y0 if y0 < -90 else y1:g}°, beyond ±90°, in its geographic "
            "coordinate reference system: are longitude and latitude swapped?")
    if x1 < -360.0 or x0 > 360.0:
        raise GridError(f"{_capital(what)} lies at longitude {x0:g}..{x1:g}°, outside -360..360°.")
    return (max(x0, -180.0), max(y0, -90.0), min(x1, 180.0), min(y1, 90.0))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def transform_bounds(bounds: Bounds, source: osr.SpatialReference, target: osr.SpatialReference,
                     what: str = "the input") -> Bounds:
    """Bounding box of ``bounds`` reprojected, with densified edges.

    Points the transformation cannot handle (outside the target projection's
    domain) are left out, so the box covers the part of ``bounds`` that can be
    used; when no point can be transformed, or PROJ refuses the pair of CRSs,
    :class:`GridError` names ``what``.
    """
    bounds = check_geographic_bounds(bounds, source, what)
    if source.IsSame(target):
        return bounds
    try:
        transform = osr.CoordinateTransformation(source, target)
    except (RuntimeError, TypeError) as exc:
        raise GridError(f"{_capital(what)} cannot be transformed to {crs_label(target)}: {exc}") from exc
    x0, y0, x1, y1 = bounds
    steps = 21
    points = []
    for i in range(steps):
        t = i / (steps - 1)
        x = x0 + (x1 - x0) * t
        y = y0 + (y1 - y0) * t
        points += [(x, y0), (x, y1), (x0, y), (x1, y)]
    for i in range(1, 8):  # a coarse interior lattice, for boxes whose edges lie partly outside the domain
        for j in range(1, 8):
            points.append((x0 + (x1 - x0) * i / 8, y0 + (y1 - y0) * j / 8))
    xs, ys = [], []
    for px, py in points:
        try:
            out = transform.TransformPoint(px, py)
        except RuntimeError:  # "Point outside of projection domain", "Invalid coordinate"...
            continue
        if math.isfinite(out[0]) and math.isfinite(out[1]):
            xs.append(out[0])
            ys.append(out[1])
    if not xs:
        raise GridError(
            f"{_capital(what)} lies outside the area where {crs_label(target)} can be used: no point of it can "
            "be transformed.")
    if target.IsGeographic():
        return check_geographic_bounds((min(xs), min(ys), max(xs), max(ys)), target, what)
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


def ground_scale(srs: osr.SpatialReference, xs: np.ndarray, ys: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local scale of a projected CRS at points: ground metres per CRS unit.

    Returns ``(along_x, along_y, area)``: the true ground length of one CRS
    unit along x and along y, and the true ground area of one square CRS
    unit, from finite differences on the CRS's own ellipsoid. NaN where the
    point cannot be transformed.
    """
    geographic = srs.CloneGeogCS()
    geographic.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = osr.CoordinateTransformation(srs, geographic)
    a = srs.GetSemiMajor()
    inverse_flattening = srs.GetInvFlattening()
    flattening = 1.0 / inverse_flattening if inverse_flattening > 0 else 0.0
    e2 = flattening * (2.0 - flattening)
    radians = geographic.GetAngularUnits() or math.pi / 180.0
    unit = srs.GetLinearUnits() or 1.0
    h = 1.0 / unit  # one metre of the CRS's plane
    xs, ys = np.asarray(xs, np.float64).ravel(), np.asarray(ys, np.float64).ravel()
    result = np.full((3, xs.size), np.nan)
    for index, (x, y) in enumerate(zip(xs, ys)):
        try:
            lon, lat = transform.TransformPoint(float(x), float(y))[:2]
            lon_x, lat_x = transform.TransformPoint(float(x) + h, float(y))[:2]
            lon_y, lat_y = transform.TransformPoint(float(x), float(y) + h)[:2]
        except RuntimeError:
            continue
        phi = lat * radians
        w = math.sqrt(1.0 - e2 * math.sin(phi) ** 2)
        meridian = a * (1.0 - e2) / w**3  # M: metres per radian of latitude
        normal = a / w * math.cos(phi)  # N cos(phi): metres per radian of longitude
        east_x, north_x = normal * (lon_x - lon) * radians, meridian * (lat_x - lat) * radians
        east_y, north_y = normal * (lon_y - lon) * radians, meridian * (lat_y - lat) * radians
        result[:, index] = (math.hypot(east_x, north_x) / (h * unit), math.hypot(east_y, north_y) / (h * unit),
                            abs(east_x * north_y - north_x * east_y) / (h * unit) ** 2)
    return result[0], result[1], result[2]


@functools.lru_cache(maxsize=64)
def _scale_range(crs_wkt: str, bounds: Bounds) -> Tuple[float, float]:
    """Smallest and largest ground metres per CRS unit over ``bounds`` (NaN where unknown)."""
    srs = osr.SpatialReference(wkt=crs_wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    if not srs.IsProjected():
        return math.nan, math.nan
    x0, y0, x1, y1 = bounds
    fractions = np.linspace(0.0, 1.0, 5)
    xs, ys = np.meshgrid(x0 + (x1 - x0) * fractions, y0 + (y1 - y0) * fractions)
    along_x, along_y, _ = ground_scale(srs, xs, ys)
    scales = np.concatenate([along_x, along_y])
    if not np.isfinite(scales).all():
        return math.nan, math.nan
    return float(scales.min()), float(scales.max())


def scale_error(srs: osr.SpatialReference, bounds: Bounds) -> float:
    """Largest relative difference between ``srs``'s distances and true ground distance over ``bounds``
    (in ``srs``'s coordinates); infinite for a geographic CRS or where it cannot be computed."""
    low, high = _scale_range(srs.ExportToWkt(), tuple(float(v) for v in bounds))
    return math.inf if math.isnan(low) else max(abs(low - 1.0), abs(high - 1.0))


def describe_scale(srs: osr.SpatialReference, bounds: Bounds) -> str:
    """``one EPSG:3857 metre is 0.81 m on the ground here`` (or a range), for messages."""
    low, high = _scale_range(srs.ExportToWkt(), tuple(float(v) for v in bounds))
    if math.isnan(low):
        return f"the ground scale of {crs_label(srs)} cannot be computed here"
    unit = "metre" if is_metric_projected(srs) else (srs.GetLinearUnitsName() or "unit")
    span = f"{low:.3f}" if abs(high - low) < 5e-4 else f"{low:.3f} to {high:.3f}"
    return f"one {crs_label(srs)} {unit} is {span} m on the ground here"


Candidate = Union[Optional[osr.SpatialReference], Tuple[osr.SpatialReference, Optional[Bounds]]]


def choose_metric_srs(candidates: Sequence[Candidate], bounds_lonlat: Bounds) -> Tuple[osr.SpatialReference, str]:
    """The CRS of a grid in true ground metres over a scene: the one metric-CRS chooser.

    The first candidate that is projected in metres and keeps true ground
    distance within :data:`TRUE_SCALE_TOLERANCE` over the scene is kept;
    otherwise (geographic, Web Mercator, feet, a UTM zone far from the scene...)
    the UTM zone of the scene's centre.

    Args:
        candidates: CRSs in order of preference (None entries are skipped),
            each optionally with the bounds, in that CRS, of the input it
            comes from: the scale is then checked there (which also serves
            scenes across the antimeridian, whose longitude box is loose).
        bounds_lonlat: The scene in WGS 84 longitude/latitude.

    Returns:
        ``(srs, note)``: ``note`` is empty when a candidate was kept, else a
        sentence saying why the grid is in UTM, for the log.
    """
    reasons = []
    centre = None
    for candidate in candidates:
        srs, own = candidate if isinstance(candidate, tuple) else (candidate, None)
        if srs is None:
            continue
        box = _scene_in(srs, own, bounds_lonlat)
        if centre is None and box is not None:
            centre = _lonlat_centre(srs, box)
        if is_metric_projected(srs):
            if box is None:
                reasons.append(f"{crs_label(srs)} cannot represent the scene")
                continue
            if scale_error(srs, box) <= TRUE_SCALE_TOLERANCE:
                return srs, ""
            reasons.append(f"{crs_label(srs)} is not in true ground metres ({describe_scale(srs, box)})")
        elif srs.IsGeographic():
            reasons.append(f"{crs_label(srs)} is geographic (degrees)")
        else:
            reasons.append(f"{crs_label(srs)} is not in metres ({srs.GetLinearUnitsName()})")
    if centre is None:
        x0, y0, x1, y1 = bounds_lonlat
        centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    utm = utm_srs_for(*centre)
    note = (f"The grid is in {crs_label(utm)} ({utm.GetName()}), in true ground metres, because "
            f"{'; '.join(reasons) or 'no input CRS was usable'}.")
    return utm, note


def _scene_in(srs: osr.SpatialReference, own: Optional[Bounds], bounds_lonlat: Bounds) -> Optional[Bounds]:
    """The scene in ``srs``: the lon/lat box transformed, within the input's own bounds when known."""
    try:
        box = transform_bounds(bounds_lonlat, wgs84(), srs, "the scene")
    except GridError:
        box = None
    if own is None:
        return box
    return intersect(own, box) or own


def _lonlat_centre(srs: osr.SpatialReference, box: Bounds) -> Optional[Tuple[float, float]]:
    """Longitude (-180..180) and latitude of the centre of ``box``."""
    try:
        lon, lat = osr.CoordinateTransformation(srs, wgs84()).TransformPoint((box[0] + box[2]) / 2,
                                                                              (box[1] + box[3]) / 2)[:2]
    except RuntimeError:
        return None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return None
    return ((lon + 180.0) % 360.0 - 180.0, lat)


def footprint_in(path: str, target: osr.SpatialReference, what: Optional[str] = None) -> Bounds:
    """Bounds of a raster in ``target``."""
    dataset = open_raster(path)
    return transform_bounds(dataset_bounds(dataset), raster_srs(dataset, path), target, what or f"the raster {path}")


def intersect(a: Optional[Bounds], b: Optional[Bounds]) -> Optional[Bounds]:
    """Intersection of two boxes, or None when they do not overlap."""
    if a is None or b is None:
        return None
    box = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return box if box[0] < box[2] and box[1] < box[3] else None


def _expand(box: Bounds, fraction: float) -> Bounds:
    dx, dy = (box[2] - box[0]) * fraction, (box[3] - box[1]) * fraction
    return (box[0] - dx, box[1] - dy, box[2] + dx, box[3] + dy)


def overlap_lonlat(pieces: Sequence[Tuple[str, Bounds, osr.SpatialReference]]) -> Bounds:
    """The longitude/latitude box every piece covers; GridError naming the first piece outside the others.

    Args:
        pieces: ``(what, bounds, srs)``.
    """
    box: Optional[Bounds] = None
    names: List[str] = []
    for what, bounds, srs in pieces:
        footprint = transform_bounds(bounds, srs, wgs84(), what)
        overlap = footprint if box is None else intersect(box, footprint)
        if overlap is None:
            raise GridError(f"The inputs do not overlap: {what} lies outside {', '.join(names)}.")
        box = overlap
        names.append(what)
    assert box is not None
    return box


def clipped_footprint(bounds: Bounds, srs: osr.SpatialReference, target: osr.SpatialReference,
                      lonlat_box: Bounds, what: str) -> Optional[Bounds]:
    """Bounds in ``target`` of the part of ``bounds`` (in ``srs``) near ``lonlat_box``.

    A raster covering a continent is first clipped to the scene, so that only
    the part that matters goes through the target projection.
    """
    try:
        near = transform_bounds(_expand(lonlat_box, 0.05), wgs84(), srs, what)
        clipped = intersect(check_geographic_bounds(bounds, srs, what), near)
    except GridError:
        clipped = bounds
    return transform_bounds(clipped or bounds, srs, target, what)


def plan_grid(
    rasters: Sequence[Tuple[str, str]],
    post_path: str,
    gsd_m: float,
    extent: Optional[Extent] = None,
) -> Tuple[Grid, str]:
    """:func:`build_grid` and the note saying why its CRS is not the post image's (empty when it is)."""
    pieces = []
    post = None
    for label, path in rasters:
        dataset = open_raster(path)
        srs = raster_srs(dataset, path)
        pieces.append((label, dataset_bounds(dataset), srs))
        if path == post_path:
            post = (srs, pieces[-1][1])
    if post is None:
        dataset = open_raster(post_path)
        post = (raster_srs(dataset, post_path), dataset_bounds(dataset))
    extent_piece = None
    if extent is not None:
        extent_srs = srs_from_user_input(extent.crs)
        bounds = (extent.x_min, extent.y_min, extent.x_max, extent.y_max)
        if not (extent.x_min < extent.x_max and extent.y_min < extent.y_max):
            raise GridError(
                f"The extent ({extent.x_min:g}, {extent.y_min:g}, {extent.x_max:g}, {extent.y_max:g}) is empty or "
                "its corners are swapped: give x min < x max and y min < y max.")
        extent_piece = ("the extent", check_geographic_bounds(bounds, extent_srs, "the extent"), extent_srs)
    lonlat = overlap_lonlat(pieces)
    if extent_piece is not None:
        lonlat = intersect(lonlat, transform_bounds(extent_piece[1], extent_piece[2], wgs84(), "the extent"))
        if lonlat is None:
            raise GridError("The extent does not overlap the area covered by all inputs.")
    srs, note = choose_metric_srs([post], lonlat)
    box: Optional[Bounds] = None
    labels: List[str] = []
    for what, bounds, piece_srs in pieces:
        footprint = clipped_footprint(bounds, piece_srs, srs, lonlat, what)
        labels.append(what)
        box = footprint if box is None else intersect(box, footprint)
        if box is None:
            raise GridError(f"The inputs do not overlap: {labels[-1]} lies outside {', '.join(labels[:-1])}.")
    assert box is not None
    if extent_piece is not None:
        box = intersect(box, transform_bounds(extent_piece[1], extent_piece[2], srs, "the extent"))
        if box is None:
            raise GridError("The extent does not overlap the area covered by all inputs.")
    x_min = math.ceil(box[0] / gsd_m - 1e-6) * gsd_m
    y_min = math.ceil(box[1] / gsd_m - 1e-6) * gsd_m
    x_max = math.floor(box[2] / gsd_m + 1e-6) * gsd_m
    y_max = math.floor(box[3] / gsd_m + 1e-6) * gsd_m
    width, height = int(round((x_max - x_min) / gsd_m)), int(round((y_max - y_min) / gsd_m))
    if width < 1 or height < 1:
        raise GridError(f"The common area of the inputs is smaller than one {gsd_m:g} m pixel.")
    return Grid.square(srs.ExportToWkt(), x_min, y_max, gsd_m, width, height), note


def build_grid(
    rasters: Sequence[Tuple[str, str]],
    post_path: str,
    gsd_m: float,
    extent: Optional[Extent] = None,
) -> Grid:
    """The target grid over the inputs' intersection (and the extent, if given).

    Its CRS is the post image's when that is projected in metres and keeps
    true ground distance within 1 % over the scene, else the UTM zone of the
    scene's centre (:func:`choose_metric_srs`). Pixel edges are snapped to
    multiples of ``gsd_m`` in the target CRS so that repeated runs over
    overlapping areas share one lattice. Inputs covering far more than the
    scene (a continental DEM) are clipped to it before being projected.

    Args:
        rasters: ``(label, path)`` of every raster that must cover the grid.
        post_path: The post image, whose CRS is preferred.
        gsd_m: Pixel size in metres.
        extent: Optional area of interest.

    Raises:
        GridError: Inputs or extent do not overlap, cannot be transformed, or
            the overlap is smaller than one pixel.
    """
    return plan_grid(rasters, post_path, gsd_m, extent)[0]


class WindowReader:
    """Reads chosen bands of one raster onto windows of a :class:`Grid`.

    Values come back as float32 ``(bands, rows, cols)`` with NaN wherever the
    source has no valid value: its nodata, an alpha band at 0, a per-dataset
    mask (``.msk``) or a per-band mask at 0, or no coverage. GDAL's warper
    honours nodata and per-dataset masks itself; an alpha band that is not
    among the chosen bands, and per-band masks, are handed to it as the
    per-dataset mask of a band's own VRT (``mask,<band>``), so that every
    GDAL mask is honoured and resampling never mixes masked values in.
    """

    def __init__(self, source: RasterInput, grid: Grid, resampling: str = "bilinear"):
        dataset = open_raster(source.path)
        raster_srs(dataset, source.path)
        check_bands(dataset, source.path, source.bands)
        self.source = source
        self._grid = grid
        self._resampling = resampling
        bands = list(source.bands)
        flags = [dataset.GetRasterBand(band).GetMaskFlags() for band in bands]
        masked = [not flag & (gdal.GMF_ALL_VALID | gdal.GMF_NODATA) for flag in flags]
        try:
            if not any(masked):
                self._datasets = [gdal.Translate("", dataset, format="VRT", bandList=bands)]
            elif all(flag & gdal.GMF_PER_DATASET for flag, mask in zip(flags, masked) if mask):
                self._datasets = [gdal.Translate("", dataset, format="VRT", bandList=bands, maskBand=f"mask,{bands[0]}")]
            else:  # per-band masks: one VRT per band, each with its band's mask
                self._datasets = [
                    gdal.Translate("", dataset, format="VRT", bandList=[band],
                                   **({"maskBand": f"mask,{band}"} if mask else {}))
                    for band, mask in zip(bands, masked)]
        except RuntimeError as exc:
            raise InputDataError(f"Cannot read the bands {bands} of {source.path}: {exc}") from exc
        self._data_type = dataset.GetRasterBand(bands[0]).DataType

    def read(self, row_px: int, col_px: int, height_px: int, width_px: int) -> np.ndarray:
        """Warp the window starting at ``(row_px, col_px)`` of the grid."""
        bounds = self._grid.window_bounds(row_px, col_px, height_px, width_px)
        parts = []
        for dataset in self._datasets:
            try:
                warped = gdal.Warp(
                    "",
                    dataset,
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
            data = np.asarray(warped.ReadAsArray(), dtype=np.float32)
            parts.append(data.reshape(dataset.RasterCount, height_px, width_px))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @property
    def data_type(self) -> int:
        """GDAL data type of the first selected band."""
        return self._data_type


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
