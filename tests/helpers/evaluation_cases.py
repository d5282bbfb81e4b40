"""Evaluation cases whose confusion matrix is known by construction, and their whole-array answers.

Truths are computed with numpy from pixel centres (``x0 + (col + 0.5) * dx``)
tested against rectangles and triangles, independently of GDAL's rasteriser.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, ogr, osr

from tests.helpers.scenes import write_raster

gdal.UseExceptions()
ogr.UseExceptions()

GT = (500000.0, 10.0, 0.0, 5200000.0, 0.0, -10.0)
EPSG = 32633
Box = Tuple[float, float, float, float]


def box_wkt(box: Box) -> str:
    """Polygon WKT of ``(x_min, y_min, x_max, y_max)``."""
    x0, y0, x1, y1 = box
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def pixel_box(row: int, col: int, height: int, width: int, geotransform=GT) -> Box:
    """Bounds of a block of whole pixels."""
    x0, dx, _, y0, _, dy = geotransform
    return (x0 + col * dx, y0 + (row + height) * dy, x0 + (col + width) * dx, y0 + row * dy)


def write_vector(path: str, wkts: Sequence[str], epsg: Optional[int], driver_name: str = "GPKG",
                 layer: str = "polygons") -> str:
    """Polygons in ``epsg`` (x/y order), or without any CRS when ``epsg`` is None (use a Shapefile then)."""
    driver = ogr.GetDriverByName(driver_name)
    if os.path.exists(path):
        driver.DeleteDataSource(path)
    source = driver.CreateDataSource(path)
    srs = None
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    out = source.CreateLayer(layer, srs=srs, geom_type=ogr.wkbPolygon)
    for wkt in wkts:
        feature = ogr.Feature(out.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        out.CreateFeature(feature)
        feature = None
    out = None
    source = None
    return path


def reproject_wkt(wkt: str, source_epsg: int, target_epsg: int) -> str:
    """A polygon's vertices transformed to another CRS (x/y order)."""
    source, target = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromEPSG(source_epsg)
    target.ImportFromEPSG(target_epsg)
    for srs in (source, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    geometry = ogr.CreateGeometryFromWkt(wkt)
    geometry.Transform(osr.CoordinateTransformation(source, target))
    return geometry.ExportToWkt()


def centres(shape: Tuple[int, int], geotransform=GT) -> Tuple[np.ndarray, np.ndarray]:
    """x and y of every pixel centre."""
    x0, dx, _, y0, _, dy = geotransform
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return x0 + (cols + 0.5) * dx, y0 + (rows + 0.5) * dy


def inside_boxes(shape, boxes: Sequence[Box], geotransform=GT) -> np.ndarray:
    """True where a pixel centre lies strictly inside any of the boxes."""
    x, y = centres(shape, geotransform)
    out = np.zeros(shape, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        out |= (x > x0) & (x < x1) & (y > y0) & (y < y1)
    return out


def inside_triangle(shape, vertices: Sequence[Tuple[float, float]], geotransform=GT) -> np.ndarray:
    """True where a pixel centre lies strictly inside a triangle."""
    x, y = centres(shape, geotransform)
    (ax, ay), (bx, by), (cx, cy) = vertices
    sides = [(bx - ax) * (y - ay) - (by - ay) * (x - ax),
             (cx - bx) * (y - by) - (cy - by) * (x - bx),
             (ax - cx) * (y - cy) - (ay - cy) * (x - cx)]
    return ((sides[0] > 0) & (sides[1] > 0) & (sides[2] > 0)) | ((sides[0] < 0) & (sides[1] < 0) & (sides[2] < 0))


def triangle_wkt(vertices) -> str:
    points = list(vertices) + [vertices[0]]
    return "POLYGON((" + ",".join(f"{x} {y}" for x, y in points) + "))"


@dataclass
class KnownCase:
    """A 12 x 16 mask raster and an inventory of two boxes, with exact counts.

    Mask (1 = landslide), nodata 255 at (0, 0) and (11, 15)::

        inventory A = rows 2..5, cols 2..6 (20 px); prediction covers rows 2..5, cols 3..8 (24 px)
        inventory B = rows 8..9, cols 10..13 (8 px); not predicted
        prediction C = rows 9..10, cols 0..1 (4 px), no inventory

    TP = 4 x 4 = 16, FP = 4 x 2 + 4 = 12, FN = 4 + 8 = 12, TN = 190 - 40 = 150 (192 px, 2 nodata).
    """

    mask: str
    inventory: str
    shape: Tuple[int, int]
    expected: Tuple[int, int, int, int]
    truth: np.ndarray
    predicted: np.ndarray
    valid: np.ndarray
    inventory_boxes: List[Box]


def make_known_case(folder: str) -> KnownCase:
    """Write the mask and the inventory of :class:`KnownCase` into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    shape = (12, 16)
    predicted = np.zeros(shape, dtype=np.uint8)
    predicted[2:6, 3:9] = 1
    predicted[9:11, 0:2] = 1
    mask_values = predicted.copy()
    mask_values[0, 0] = 255
    mask_values[11, 15] = 255
    valid = mask_values != 255
    mask = write_raster(os.path.join(folder, "mask.tif"), mask_values, GT, EPSG, nodata=255)
    boxes = [pixel_box(2, 2, 4, 5), pixel_box(8, 10, 2, 4)]
    inventory = write_vector(os.path.join(folder, "inventory.gpkg"), [box_wkt(b) for b in boxes], EPSG)
    truth = inside_boxes(shape, boxes)
    return KnownCase(mask, inventory, shape, (16, 12, 12, 150), truth, predicted.astype(bool), valid, boxes)
