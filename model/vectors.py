"""Polygons from a vector file — masks, inventories, areas — for the plugin and the trainer alike.

One reader (:func:`read_polygons`) with one set of rules, used by
:class:`model.masks.PolygonMask` (cloud/snow masks, inventories, evaluation
areas and predicted polygons in the plugin) and by the trainer's tile builder:

* The layer must have a CRS; each geometry is reprojected to the grid's CRS.
* A feature without geometry, or with an empty one, is *skipped*.
* A geometry that cannot be reprojected (it reaches beyond the domain of the
  grid's CRS) is counted as *outside* and dropped.
* An invalid geometry (e.g. a self-intersecting ring) is *repaired*:
  ``MakeValid``, which keeps every part, else ``Buffer(0)``.
* Curves become line segments, Z and M are dropped, and only the polygon parts
  with an area are kept (points and lines of a collection are not); a
  feature with none is *skipped*.
* A polygon that does not reach the grid is counted as *outside*; it is kept,
  as windows may reach past the grid's edge.

Polygons are burnt onto windows of the grid by :meth:`Polygons.burn` with
GDAL's pixel-centre rule (or, on request, every pixel they touch).

A source is ``path`` or ``path|layername=name`` (QGIS' notation);
:func:`vector_source` tells a vector source from a raster one by opening it,
never by the file's extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import numpy as np
from osgeo import gdal, ogr, osr

from .errors import InputDataError

gdal.UseExceptions()
ogr.UseExceptions()

UNDEFINED_SRS_NAMES = ("undefined geographic srs", "undefined cartesian srs")
"""What OGR reports for a GeoPackage layer stored without a CRS (srs_id 0 or -1)."""

LAYER_SEPARATOR = "|layername="


@dataclass(frozen=True)
class VectorInput:
    """A vector file and optionally one of its layers."""

    path: str
    layer: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> "VectorInput":
        """``path`` or ``path|layername=name`` (other ``|`` options are ignored)."""
        path, _, rest = text.partition("|")
        layer = rest.split("=", 1)[1] if rest.startswith("layername=") else None
        return cls(path, layer or None)


def vector_source(text: str) -> Optional[VectorInput]:
    """``text`` as a vector source when GDAL opens it as a vector dataset with a layer, else None (a raster)."""
    source = VectorInput.parse(text)
    try:
        dataset = gdal.OpenEx(source.path, gdal.OF_VECTOR)
    except RuntimeError:
        return None
    if dataset is None or dataset.GetLayerCount() == 0:
        return None
    return source


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


def transformation_to_grid(layer_srs: osr.SpatialReference, grid: Any) -> Optional[osr.CoordinateTransformation]:
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


@dataclass
class Polygons:
    """The polygons of one vector layer in the grid's CRS, in a memory layer, and what happened to them.

    Attributes:
        layer: The OGR memory layer (MultiPolygons in the grid's CRS).
        where: The file (and layer) they came from, for messages.
        total: Features with polygons (kept or outside).
        used: Polygons that reach the grid.
        outside: Polygons that do not reach the grid or cannot be reprojected.
        repaired: Invalid geometries that were repaired.
        skipped: Features without geometry or without polygon parts.
        extent: ``(x_min, x_max, y_min, y_max)`` of what was kept, None when nothing was.
    """

    store: Any
    layer: Any
    where: str
    total: int = 0
    used: int = 0
    outside: int = 0
    repaired: int = 0
    skipped: int = 0
    extent: Optional[Tuple[float, float, float, float]] = None

    def burn(self, grid: Any, row_px: int, col_px: int, height_px: int, width_px: int,
             all_touched: bool = False) -> np.ndarray:
        """Boolean window of ``grid``: True where a polygon covers the pixel centre
        (with ``all_touched``, where it touches the pixel at all).

        ``grid`` is anything with ``crs_wkt`` and a north-up ``geotransform``.
        """
        origin_x, size_x, _, origin_y, _, size_y = grid.geotransform
        x0 = origin_x + col_px * size_x
        y1 = origin_y + row_px * size_y
        x1, y0 = x0 + width_px * size_x, y1 + height_px * size_y
        if self.extent is None or self.extent[0] > x1 or self.extent[1] < x0 \
                or self.extent[2] > y1 or self.extent[3] < y0:
            return np.zeros((height_px, width_px), dtype=bool)
        target = gdal.GetDriverByName("MEM").Create("", width_px, height_px, 1, gdal.GDT_Byte)
        target.SetGeoTransform((x0, size_x, 0.0, y1, 0.0, size_y))
        target.SetProjection(grid.crs_wkt)
        options = ["ALL_TOUCHED=TRUE"] if all_touched else []
        self.layer.SetSpatialFilterRect(x0, y0, x1, y1)  # only the polygons near this window
        try:
            gdal.RasterizeLayer(target, [1], self.layer, burn_values=[1], options=options)
        finally:
            self.layer.SetSpatialFilter(None)
        return target.ReadAsArray() == 1


def read_polygons(source: VectorInput, grid: Any, what: str) -> Polygons:
    """Read, reproject and repair the polygons of ``source`` for ``grid`` (see the module's rules).

    Args:
        source: The vector file and layer.
        grid: Anything with ``crs_wkt``, a north-up ``geotransform``,
            ``width_px`` and ``height_px``.
        what: What the polygons are, for messages ("inventory", "cloud mask"...).

    Raises:
        InputDataError: The file or layer cannot be opened or has no CRS.
    """
    _, layer, layer_srs = open_polygon_layer(source, what)
    try:
        transform = transformation_to_grid(layer_srs, grid)
    except InputDataError as exc:
        raise InputDataError(f"The {what} {source.path} cannot be placed on the grid. {exc}") from exc
    store = ogr.GetDriverByName("Memory").CreateDataSource("")
    out_layer = store.CreateLayer("polygons", srs=osr.SpatialReference(wkt=grid.crs_wkt),
                                  geom_type=ogr.wkbMultiPolygon)
    result = Polygons(store, out_layer, source.path + (f" (layer '{source.layer}')" if source.layer else ""))
    box = _grid_box(grid)
    for feature in layer:
        geometry = feature.GetGeometryRef()
        if geometry is None or geometry.IsEmpty():
            result.skipped += 1
            continue
        geometry = geometry.Clone()
        if transform is not None:
            try:
                geometry.Transform(transform)
            except RuntimeError:
                result.total += 1
                result.outside += 1
                continue
        if not _quiet(geometry.IsValid):
            geometry = repair(geometry)
            result.repaired += 1
        polygons = polygon_parts(geometry)
        if polygons is None:
            result.skipped += 1
            continue
        result.total += 1
        if polygons.Intersects(box):
            result.used += 1
        else:
            result.outside += 1
        out = ogr.Feature(out_layer.GetLayerDefn())
        out.SetGeometry(polygons)
        out_layer.CreateFeature(out)
    if out_layer.GetFeatureCount():
        result.extent = out_layer.GetExtent()
    return result


def repair(geometry: ogr.Geometry) -> ogr.Geometry:
    """A valid version of ``geometry``: MakeValid (keeps every part), else Buffer(0)."""
    fixed = None
    try:
        fixed = _quiet(geometry.MakeValid)
    except (RuntimeError, AttributeError):
        fixed = None
    if fixed is None or fixed.IsEmpty():
        fixed = _quiet(lambda: geometry.Buffer(0))
    return fixed


def polygon_parts(geometry: ogr.Geometry) -> Optional[ogr.Geometry]:
    """The polygon parts of a geometry as a 2D MultiPolygon, or None when it has none."""
    if geometry.HasCurveGeometry():
        geometry = geometry.GetLinearGeometry()
    kind = ogr.GT_Flatten(geometry.GetGeometryType())
    # Parts are cloned at once: a child reference dies with its (temporary) parent.
    if kind == ogr.wkbPolygon:
        parts = [geometry.Clone()]
    elif kind in (ogr.wkbMultiPolygon, ogr.wkbGeometryCollection):
        parts = []
        for index in range(geometry.GetGeometryCount()):
            sub = polygon_parts(geometry.GetGeometryRef(index).Clone())
            if sub is not None:
                parts.extend(sub.GetGeometryRef(k).Clone() for k in range(sub.GetGeometryCount()))
    else:
        return None
    out = ogr.Geometry(ogr.wkbMultiPolygon)
    for part in parts:
        part.FlattenTo2D()
        if not part.IsEmpty() and part.GetArea() > 0:
            out.AddGeometry(part)
    return out if out.GetGeometryCount() else None


def _grid_box(grid: Any) -> ogr.Geometry:
    origin_x, size_x, _, origin_y, _, size_y = grid.geotransform
    x0, x1 = origin_x, origin_x + grid.width_px * size_x
    y1, y0 = origin_y, origin_y + grid.height_px * size_y
    return ogr.CreateGeometryFromWkt(f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))")


def _quiet(function: Callable[[], Any]) -> Any:
    """Call ``function`` with GDAL/GEOS warnings silenced (e.g. 'Self-intersection at ...')."""
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        return function()
    finally:
        gdal.PopErrorHandler()
