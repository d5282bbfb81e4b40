"""Turn Processing parameters into the core's plain, path-based request.

Only layer *sources* are read here (never a layer's settings), so the request
can run in a background thread.
"""

import os

from qgis.core import QgsProcessingException, QgsProcessingUtils

from ..model.grid import Extent, RasterInput
from ..model.masks import VectorInput
from .naming import parameter_label

GDAL_PROVIDER = "gdal"


def parse_bands(value, count, label):
    """Band numbers from ``"4,3,2"`` / ``"4 3 2"`` / ``[4, 3, 2]``; ``count`` of them, each >= 1.

    Raises:
        QgsProcessingException: Naming ``label`` (the parameter) and what is wrong.
    """
    if isinstance(value, (list, tuple)):
        items = [str(item) for item in value]
    else:
        items = str(value).replace(";", ",").replace(",", " ").split()
    try:
        bands = tuple(int(item) for item in items)
    except ValueError:
        raise QgsProcessingException(
            f"{label}: '{value}' is not a list of band numbers; give {count} whole numbers such as "
            f"{', '.join(str(i) for i in range(1, count + 1))}.") from None
    if len(bands) != count or min(bands, default=1) < 1:
        raise QgsProcessingException(
            f"{label}: give {count} band number(s) from 1 up ({'red, green, blue' if count == 3 else 'one band'}); "
            f"got '{value}'.")
    return bands


def raster_input(algorithm, parameters, context, layer_name, bands, bands_label):
    """A :class:`RasterInput` from a raster layer parameter and its band numbers.

    ``bands_label`` names the parameter the bands came from, for messages.
    """
    label = parameter_label(algorithm, layer_name)
    layer = algorithm.parameterAsRasterLayer(parameters, layer_name, context)
    if layer is None:
        raise QgsProcessingException(f"{label}: {algorithm.invalidRasterError(parameters, layer_name)}")
    if layer.providerType() != GDAL_PROVIDER:
        raise QgsProcessingException(
            f"{label}: {layer.name()} is a '{layer.providerType()}' layer; this algorithm reads files GDAL opens "
            "(GeoTIFF, VRT, JP2...). Save the layer to a GeoTIFF first."
        )
    if not layer.crs().isValid():
        raise QgsProcessingException(f"{label}: {layer.name()} has no coordinate reference system; assign one first.")
    for band in bands:
        if not 1 <= band <= layer.bandCount():
            raise QgsProcessingException(
                f"{bands_label}: band {band} does not exist in {layer.name()}, which has {layer.bandCount()} band(s)."
            )
    return RasterInput(layer.source(), tuple(bands))


def optional_raster_input(algorithm, parameters, context, layer_name):
    """Band 1 of an optional raster layer that GDAL reads, or None; refused early when GDAL cannot read it."""
    if not parameters.get(layer_name):
        return None
    label = parameter_label(algorithm, layer_name)
    layer = algorithm.parameterAsRasterLayer(parameters, layer_name, context)
    if layer is None:
        raise QgsProcessingException(f"{label}: {algorithm.invalidRasterError(parameters, layer_name)}")
    if layer.providerType() != GDAL_PROVIDER:
        raise QgsProcessingException(
            f"{label}: {layer.name()} is a '{layer.providerType()}' layer; this algorithm reads files GDAL opens. "
            "Save the layer to a GeoTIFF first.")
    if not layer.crs().isValid():
        raise QgsProcessingException(f"{label}: {layer.name()} has no coordinate reference system; assign one first.")
    return RasterInput(layer.source(), (1,))


def optional_vector_input(algorithm, parameters, context, name, feedback):
    """A file path OGR can open (exported when needed) for an optional vector parameter."""
    if not parameters.get(name):
        return None
    path, layer_name = algorithm.parameterAsCompatibleSourceLayerPathAndLayerName(
        parameters, name, context, ["gpkg", "shp", "geojson"], "gpkg", feedback
    )
    if not path:
        raise QgsProcessingException(f"{parameter_label(algorithm, name)}: {algorithm.invalidSourceError(parameters, name)}")
    return VectorInput(path, layer_name or None)


def optional_extent(algorithm, parameters, context, name):
    """The extent parameter as an :class:`Extent`, or None when not set."""
    if not parameters.get(name):
        return None
    rectangle = algorithm.parameterAsExtent(parameters, name, context)
    if rectangle.isNull() or rectangle.isEmpty():
        return None
    crs = algorithm.parameterAsExtentCrs(parameters, name, context)
    if not crs.isValid():
        raise QgsProcessingException(f"{parameter_label(algorithm, name)}: the extent has no valid coordinate reference system.")
    return Extent(rectangle.xMinimum(), rectangle.yMinimum(), rectangle.xMaximum(), rectangle.yMaximum(), crs.toWkt())


def raster_destination(algorithm, parameters, context, name):
    """The GeoTIFF path of an optional raster output, or None when skipped."""
    if parameters.get(name) is None:
        return None
    path = algorithm.parameterAsOutputLayer(parameters, name, context)
    if not path:
        return None
    if os.path.splitext(path)[1].lower() not in (".tif", ".tiff"):
        raise QgsProcessingException(
            f"{parameter_label(algorithm, name)}: {path}: rasters are written as GeoTIFF; use a .tif file name.")
    return path


def work_dir():
    """The folder above Processing's per-session temporary folder (the configured temporary folder).

    The core keeps its scratch folders under it in one place, so that a run
    cleans what runs killed in earlier sessions left behind.
    """
    return os.path.dirname(os.path.normpath(QgsProcessingUtils.tempFolder()))
