"""A PNG overview of a landslide map: an image with the landslide outlines drawn on it.

Pure GDAL/OGR and numpy, so scripts and reports can make one without QGIS.
The image is read decimated (at most ``max_px`` on its longer side), shown as
a true-colour composite with a 2-98 % stretch, and the polygons' boundaries are
burnt in one colour, reprojected to the image's CRS.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, ogr, osr

from .card import REFLECTANCE_SATURATION
from .commit import OutputCommit, remove_file
from .errors import InputDataError
from .grid import RasterInput, check_bands, open_raster, raster_srs
from .preprocess import image_to_8bit, resolve_radiometry
from .vectors import VectorInput, open_polygon_layer

gdal.UseExceptions()
ogr.UseExceptions()

OUTLINE_RGB: Tuple[int, int, int] = (255, 32, 208)


def _stretch(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Byte display values: 2-98 % percentile stretch over the valid pixels, black where invalid."""
    out = np.zeros(values.shape, np.uint8)
    if valid.any():
        low, high = np.percentile(values[:, valid], (2, 98))
        scaled = (values - low) / max(high - low, 1e-6) * 255.0
        out[:] = np.clip(scaled, 0, 255).astype(np.uint8)
        out[:, ~valid] = 0
    return out


def _outline_layer(polygons: VectorInput, target: osr.SpatialReference):
    """An in-memory layer of the polygons' boundaries in ``target``'s CRS (keeps its data source alive)."""
    source, layer, srs = open_polygon_layer(polygons, "polygons")
    transform = None if srs.IsSame(target) else osr.CoordinateTransformation(srs, target)
    memory = ogr.GetDriverByName("Memory").CreateDataSource("outlines")
    outlines = memory.CreateLayer("outlines", srs=target, geom_type=ogr.wkbMultiLineString)
    for feature in layer:
        geometry = feature.GetGeometryRef()
        if geometry is None or geometry.IsEmpty():
            continue
        boundary = geometry.Boundary()
        if transform is not None:
            boundary.Transform(transform)
        out = ogr.Feature(outlines.GetLayerDefn())
        out.SetGeometry(boundary)
        outlines.CreateFeature(out)
    return (memory, source), outlines


def write_overview_png(image: RasterInput, out_path: str, polygons: Optional[VectorInput] = None,
                       radiometry: str = "auto", max_px: int = 1600,
                       colour: Sequence[int] = OUTLINE_RGB) -> str:
    """Write ``image`` (its three bands as R, G, B) with ``polygons`` outlined to a PNG; returns its path.

    The PNG appears under its final name only when complete.
    """
    if len(image.bands) != 3:
        raise InputDataError("An overview needs three bands (red, green, blue).")
    dataset = open_raster(image.path)
    check_bands(dataset, image.path, image.bands)
    scale = max(dataset.RasterXSize, dataset.RasterYSize) / float(max_px)
    scale = max(scale, 1.0)
    width, height = max(1, round(dataset.RasterXSize / scale)), max(1, round(dataset.RasterYSize / scale))
    bands = [dataset.GetRasterBand(b) for b in image.bands]
    values = np.stack([b.ReadAsArray(buf_xsize=width, buf_ysize=height, resample_alg=gdal.GRIORA_Average)
                       for b in bands]).astype(np.float32)
    valid = np.ones((height, width), bool)
    for band in bands:  # nodata, alpha, per-dataset and per-band masks alike
        valid &= band.GetMaskBand().ReadAsArray(buf_xsize=width, buf_ysize=height) > 0
    kind = resolve_radiometry(radiometry, bands[0].DataType)
    rgb = _stretch(image_to_8bit(values, kind, REFLECTANCE_SATURATION), valid)

    memory = gdal.GetDriverByName("MEM").Create("", width, height, 3, gdal.GDT_Byte)
    x0, dx, rx, y0, ry, dy = dataset.GetGeoTransform()
    memory.SetGeoTransform((x0, dx * dataset.RasterXSize / width, rx, y0, ry, dy * dataset.RasterYSize / height))
    memory.SetProjection(dataset.GetProjection())
    for index in range(3):
        memory.GetRasterBand(index + 1).WriteArray(rgb[index])
    if polygons is not None:
        keep_alive, outlines = _outline_layer(polygons, raster_srs(dataset, image.path))
        gdal.RasterizeLayer(memory, [1, 2, 3], outlines, burn_values=list(colour)[:3], options=["ALL_TOUCHED=TRUE"])
        del keep_alive
    with OutputCommit([("overview image", out_path)], prefix="overview") as outputs:
        partial = outputs.partial_path(out_path)
        gdal.GetDriverByName("PNG").CreateCopy(partial, memory)
        memory = None
        remove_file(partial + ".aux.xml")
        outputs.commit()
    return out_path
