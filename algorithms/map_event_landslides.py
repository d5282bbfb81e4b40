"""Processing algorithm "Map event landslides" (id ``mapeventlandslides``)."""

import os
from dataclasses import replace

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBand,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProviderRegistry,
    QgsWkbTypes,
)
from osgeo import ogr
from qgis.PyQt.QtCore import QVariant

from ..model.errors import LandslideMapperError, RuntimeDependencyError
from ..model.pipeline import DEFAULT_MAX_WINDOWS, DEFAULT_WINDOW_PX, MappingRequest, check_request, map_landslides
from ..model.session import EXECUTION_PROVIDERS, choose_providers, import_onnxruntime
from .base import FeedbackAdapter, LandslideAlgorithm, processing_error
from .default_model import default_card_values, default_model_path
from .event_inputs import EventInputs
from .inputs import (
    optional_extent,
    optional_raster_input,
    optional_vector_input,
    raster_destination,
    raster_input,
    work_dir,
)
from .naming import parameter_label
from .styling import LoadOrder, apply_style_on_load

EXECUTION_PROVIDER_LABELS = (
    "Automatic: a GPU when onnxruntime offers one, else the CPU",
    "CPU only",
    "NVIDIA GPU (CUDA; needs onnxruntime-gpu)",
    "Windows GPU (DirectML; needs onnxruntime-directml)",
    "Apple (CoreML)",
)
class MapEventLandslides(EventInputs, LandslideAlgorithm):
    """Map the landslides of one event with a carded ONNX model."""

    # The first release had one parameter per colour; still accepted (hidden) so old scripts and models run.
    LEGACY_PRE_BANDS = ("PRE_RED_BAND", "PRE_GREEN_BAND", "PRE_BLUE_BAND")
    LEGACY_POST_BANDS = ("POST_RED_BAND", "POST_GREEN_BAND", "POST_BLUE_BAND")
    EXTENT = "EXTENT"
    MODEL = "MODEL"
    THRESHOLD = "THRESHOLD"
    MIN_AREA_M2 = "MIN_AREA_M2"
    EXECUTION_PROVIDER = "EXECUTION_PROVIDER"
    WINDOW_SIZE = "WINDOW_SIZE"
    BATCH_SIZE = "BATCH_SIZE"
    THREADS = "THREADS"
    MIN_VALID_FRACTION = "MIN_VALID_FRACTION"
    MAX_WINDOWS = "MAX_WINDOWS"
    OUTPUT_PROBABILITY = "OUTPUT_PROBABILITY"
    OUTPUT_MASK = "OUTPUT_MASK"
    OUTPUT_POLYGONS = "OUTPUT_POLYGONS"
    LANDSLIDE_COUNT = "LANDSLIDE_COUNT"
    LANDSLIDE_AREA_M2 = "LANDSLIDE_AREA_M2"
    WINDOWS_RUN = "WINDOWS_RUN"
    WINDOWS_SKIPPED = "WINDOWS_SKIPPED"
    GRID_CRS = "GRID_CRS"

    HELP_ANCHOR = "map-event-landslides"
    NEEDS_ONNXRUNTIME = True
    TAGS = ("landslide", "landslides", "earthquake", "storm", "typhoon", "rainfall", "disaster", "change detection",
            "pre-event", "post-event", "deep learning", "cnn", "resunet", "onnx", "sentinel-2", "dem", "mapping")

    def name(self):
        """Stable id; never change it."""
        return "mapeventlandslides"

    def displayName(self):  # noqa: N802 (QGIS API name)
        """Name in the Toolbox."""
        return self.tr("Map event landslides")

    def shortDescription(self):  # noqa: N802 (QGIS API name)
        """Toolbox tooltip."""
        return self.tr("Maps the landslides an earthquake or storm triggered, from a pre-event image, a post-event "
                       "image and a DEM, with a convolutional network (ONNX).")

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS API name)
        """Declare parameters and outputs: what most runs need first, the rest under Advanced."""
        for parameter in self.event_parameters():
            self.addParameter(parameter)
        self.addParameter(self.mask_polygons_parameter())
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, self.tr("Area to map"), optional=True))
        default_model = default_model_path()
        self.addParameter(
            QgsProcessingParameterFile(
                self.MODEL, self.tr("Model (ONNX file with a model card; empty: the default model)"), extension="onnx",
                defaultValue=default_model, optional=default_model is not None,
            )
        )
        card_threshold, card_min_area = default_card_values()
        self.addParameter(QgsProcessingParameterNumber(
            self.THRESHOLD, self.tr("Probability threshold (from the model card)"),
            QgsProcessingParameterNumber.Double, card_threshold, optional=True, minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_AREA_M2, self.tr("Smallest landslide kept (m², from the model card)"),
            QgsProcessingParameterNumber.Double, card_min_area, optional=True, minValue=0.0))
        self._add_advanced_parameters()
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_POLYGONS, self.tr("Landslides"), QgsProcessing.TypeVectorPolygon,
            optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_PROBABILITY, self.tr("Landslide probability"), optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_MASK, self.tr("Landslide mask"), optional=True, createByDefault=True))
        for name, description in (
            (self.LANDSLIDE_COUNT, "Number of landslides"),
            (self.LANDSLIDE_AREA_M2, "Total landslide area (m²)"),
            (self.WINDOWS_RUN, "Windows run through the model"),
            (self.WINDOWS_SKIPPED, "Windows skipped (not enough valid data)"),
        ):
            self.addOutput(QgsProcessingOutputNumber(name, self.tr(description)))
        self.addOutput(QgsProcessingOutputString(self.GRID_CRS, self.tr("CRS of the outputs")))

    def _add_advanced_parameters(self):
        # Optional with a default: QGIS 3.22 refuses a missing value of a non-optional parameter even with a default.
        advanced = self.event_advanced_parameters() + (
            QgsProcessingParameterEnum(self.EXECUTION_PROVIDER, self.tr("Run the network on"),
                                       options=list(EXECUTION_PROVIDER_LABELS), defaultValue=0, optional=True),
            QgsProcessingParameterNumber(self.WINDOW_SIZE, self.tr("Window size (px, rounded up to the model's multiple)"),
                                         QgsProcessingParameterNumber.Integer, DEFAULT_WINDOW_PX, minValue=32, maxValue=4096),
            QgsProcessingParameterNumber(self.BATCH_SIZE, self.tr("Windows per batch"),
                                         QgsProcessingParameterNumber.Integer, 1, minValue=1, maxValue=64),
            QgsProcessingParameterNumber(self.THREADS, self.tr("CPU threads for the network (0 = all cores)"),
                                         QgsProcessingParameterNumber.Integer, 0, minValue=0, maxValue=256),
            QgsProcessingParameterNumber(self.MIN_VALID_FRACTION, self.tr("Skip windows with a smaller valid fraction"),
                                         QgsProcessingParameterNumber.Double, 0.0, minValue=0.0, maxValue=1.0),
            QgsProcessingParameterNumber(self.MAX_WINDOWS, self.tr("Refuse areas needing more windows than"),
                                         QgsProcessingParameterNumber.Integer, DEFAULT_MAX_WINDOWS, minValue=1),
        )
        for parameter in advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)
        for image, names in ((self.tr("Pre-event image"), self.LEGACY_PRE_BANDS),
                             (self.tr("Post-event image"), self.LEGACY_POST_BANDS)):
            parent = self.PRE_IMAGE if names is self.LEGACY_PRE_BANDS else self.POST_IMAGE
            for name, colour in zip(names, ("red", "green", "blue")):
                legacy = QgsProcessingParameterBand(name, f"{image}: {colour} band (old parameter)", None, parent,
                                                    optional=True)
                legacy.setFlags(legacy.flags() | QgsProcessingParameterDefinition.FlagHidden)
                self.addParameter(legacy)

    def _bands(self, parameters, context, bands_name, legacy_names):
        """The R, G, B band numbers of an image: the old per-colour parameters when a script still sets them."""
        label = parameter_label(self, bands_name)
        if any(parameters.get(name) not in (None, "") for name in legacy_names):
            values = []
            for name, default in zip(legacy_names, (1, 2, 3)):
                given = parameters.get(name) not in (None, "")
                values.append(self.parameterAsInt(parameters, name, context) if given else default)
            return tuple(values), f"{label.split(' (')[0]} ({'/'.join(legacy_names)})"
        return self.band_numbers(parameters, context, bands_name), label

    def _execution_provider(self, parameters, context):
        """The provider choice; a GPU provider this onnxruntime does not offer is refused naming the parameter."""
        choice = EXECUTION_PROVIDERS[self.parameterAsEnum(parameters, self.EXECUTION_PROVIDER, context)]
        if choice not in ("auto", "cpu"):
            try:
                choose_providers(choice, import_onnxruntime().get_available_providers())
            except RuntimeDependencyError as error:
                raise QgsProcessingException(
                    f"{parameter_label(self, self.EXECUTION_PROVIDER)}: {str(error).split(': ', 1)[-1]}") from None
        return choice

    def _card_value(self, parameters, context, name, model, card_value_index):
        """A threshold / minimum area: None (the model card's) when unset, or when it is the default model's
        card value shown in the dialog but another model was chosen."""
        if parameters.get(name) in (None, ""):
            return None
        value = self.parameterAsDouble(parameters, name, context)
        shown = default_card_values()[card_value_index]
        default = default_model_path()
        if shown is not None and value == shown and (default is None or os.path.realpath(model) != os.path.realpath(default)):
            return None
        return value

    def _request(self, parameters, context, feedback, with_outputs):
        """The core request; raises QgsProcessingException on unusable parameters."""
        model = self.parameterAsFile(parameters, self.MODEL, context) or default_model_path()
        if not model:
            raise QgsProcessingException(
                f"{parameter_label(self, self.MODEL)}: no model given and no default model is installed; "
                "choose an ONNX model file.")
        pre_bands, pre_label = self._bands(parameters, context, self.PRE_BANDS, self.LEGACY_PRE_BANDS)
        post_bands, post_label = self._bands(parameters, context, self.POST_BANDS, self.LEGACY_POST_BANDS)
        return MappingRequest(
            model_path=model,
            pre=raster_input(self, parameters, context, self.PRE_IMAGE, pre_bands, pre_label),
            post=raster_input(self, parameters, context, self.POST_IMAGE, post_bands, post_label),
            dem=self.dem_input(parameters, context),
            radiometry=self.radiometry(parameters, context),
            extent=optional_extent(self, parameters, context, self.EXTENT),
            mask_raster=optional_raster_input(self, parameters, context, self.MASK_RASTER),
            mask_polygons=optional_vector_input(self, parameters, context, self.MASK_POLYGONS, feedback) if with_outputs else None,
            probability_path=raster_destination(self, parameters, context, self.OUTPUT_PROBABILITY) if with_outputs else None,
            mask_path=raster_destination(self, parameters, context, self.OUTPUT_MASK) if with_outputs else None,
            threshold=self._card_value(parameters, context, self.THRESHOLD, model, 0),
            min_area_m2=self._card_value(parameters, context, self.MIN_AREA_M2, model, 1),
            mask_buffer_m=self.mask_buffer_m(parameters, context),
            execution_provider=self._execution_provider(parameters, context),
            window_px=self.parameterAsInt(parameters, self.WINDOW_SIZE, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            threads=self.parameterAsInt(parameters, self.THREADS, context),
            min_valid_fraction=self.parameterAsDouble(parameters, self.MIN_VALID_FRACTION, context),
            max_windows=self.parameterAsInt(parameters, self.MAX_WINDOWS, context),
            work_dir=work_dir(),
        )

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS API name)
        """Refuse before running: bad bands, invalid model, disjoint inputs, too many windows."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:
            check_request(self._request(parameters, context, None, with_outputs=False))
        except (QgsProcessingException, LandslideMapperError) as error:
            return False, str(error)
        except Exception as error:  # noqa: BLE001 - an exception escaping this C++ virtual aborts qgis_process
            return False, f"The inputs cannot be checked: {error}"
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API name)
        """Resolve inputs, run the core (which hands over the polygons as it makes them), return every output."""
        request = self._request(parameters, context, feedback, with_outputs=True)
        # A GeoPackage file is written by the core with the rasters, all or nothing; other destinations
        # (a layer of an existing data source, a memory layer) go through the sink.
        polygons_file = _polygon_file(self, parameters, context)
        request = replace(request, polygons_path=polygons_file)
        adapter = FeedbackAdapter(feedback)
        polygons = None
        try:
            plan = check_request(request)
            feedback.pushInfo(
                f"The network runs on {' then '.join(plan.model.providers)}; clouds and snow are left out with a "
                f"{request.mask_buffer_m:g} m buffer." if (request.mask_raster or request.mask_polygons) else
                f"The network runs on {' then '.join(plan.model.providers)}.")
            if polygons_file is None:
                polygons = _PolygonOutput(self, parameters, context, plan.grid.crs_wkt)
            result = map_landslides(request, adapter.progress, adapter.is_cancelled, adapter.log, plan=plan,
                                    on_polygon=None if polygons is None else polygons.add)
            # The polygons are written, the rasters have their final names: close the sink last,
            # so that a failure up to here removes it (the core removes its own files itself).
            polygons_id = result.polygons_path if polygons is None else polygons.finish()
        except BaseException as error:
            if polygons is not None:
                polygons.discard()
            if isinstance(error, LandslideMapperError):
                raise processing_error(error)
            raise
        outputs = {
            self.OUTPUT_PROBABILITY: result.probability_path,
            self.OUTPUT_MASK: result.mask_path,
            self.LANDSLIDE_COUNT: result.landslide_count,
            self.LANDSLIDE_AREA_M2: result.landslide_area_m2,
            self.WINDOWS_RUN: result.windows_run,
            self.WINDOWS_SKIPPED: result.windows_skipped,
            self.GRID_CRS: QgsCoordinateReferenceSystem.fromWkt(result.grid.crs_wkt).authid() or result.grid.crs_wkt,
            self.OUTPUT_POLYGONS: polygons_id,
        }
        # Read at a glance: polygon outlines on top, the probability ramp under them, the mask loaded but hidden.
        order = LoadOrder()
        for rank, (key, style, visible) in enumerate(((self.OUTPUT_POLYGONS, "polygons.qml", True),
                                                      (self.OUTPUT_PROBABILITY, "probability.qml", True),
                                                      (self.OUTPUT_MASK, "mask.qml", False))):
            if outputs[key]:
                apply_style_on_load(context, outputs[key], style, visible=visible, order=order, rank=rank)
        feedback.setProgress(100)
        feedback.pushInfo(
            f"{result.landslide_count} landslides, {result.landslide_area_m2 / 1e4:.2f} ha, threshold "
            f"{result.threshold:g}, minimum area {result.min_area_m2:g} m²; {result.windows_run} windows run, "
            f"{result.windows_skipped} skipped."
        )
        return outputs


def _polygon_file(algorithm, parameters, context):
    """The polygon output's path when it is a whole GeoPackage file, else None."""
    if parameters.get(algorithm.OUTPUT_POLYGONS) is None:
        return None
    destination = algorithm.parameterAsOutputLayer(parameters, algorithm.OUTPUT_POLYGONS, context)
    if destination and "|" not in destination and destination.lower().endswith(".gpkg") \
            and not destination.lower().startswith(("ogr:", "memory:", "postgis:", "spatialite:")):
        return destination
    return None


class _PolygonOutput:
    """The polygon sink, created when the first polygon arrives (or, for an empty map, at the end).

    Nothing is created before the windows have all run, so a run cancelled or failed
    before then leaves no vector output; :meth:`discard` removes one created since.
    """

    def __init__(self, algorithm, parameters, context, crs_wkt):
        self._algorithm = algorithm
        self._parameters = parameters
        self._context = context
        self._crs = QgsCoordinateReferenceSystem.fromWkt(crs_wkt)
        self._fields = QgsFields()
        self._fields.append(QgsField("id", QVariant.Int))
        for name in ("area_m2", "mean_prob", "max_prob"):
            self._fields.append(QgsField(name, QVariant.Double))
        self._sink = None
        self._dest_id = None
        self._created = False
        self._count = 0

    def _create(self):
        self._created = True
        self._sink, self._dest_id = self._algorithm.parameterAsSink(
            self._parameters, self._algorithm.OUTPUT_POLYGONS, self._context, self._fields, QgsWkbTypes.Polygon, self._crs)

    def add(self, polygon):
        """Write one landslide polygon (a ``model.polygons.LandslidePolygon``)."""
        if not self._created:
            self._create()
        if self._sink is None:  # no polygon output requested
            return
        self._count += 1
        geometry = QgsGeometry()
        geometry.fromWkb(polygon.wkb)
        feature = QgsFeature(self._fields)
        feature.setGeometry(geometry)
        feature.setAttributes([self._count, polygon.area_m2, polygon.mean_prob, polygon.max_prob])
        if not self._sink.addFeature(feature, QgsFeatureSink.FastInsert):
            raise QgsProcessingException(f"Cannot write landslide polygon {self._count} to the polygon output.")

    def finish(self):
        """Close the sink; return the output's id (None when no polygon output was requested)."""
        if not self._created:
            self._create()
        self._sink = None
        return self._dest_id

    def discard(self):
        """Close and remove a polygon output this run created."""
        self._sink = None  # close the data source before removing it
        if self._dest_id:
            _remove_vector_output(self._dest_id)
        self._dest_id = None


def _remove_vector_output(dest_id):
    """Remove a polygon output this run created: a layer added to a data source, or the whole file.

    A destination given as a plain file name is (re)created by the run, so the file goes; a layer
    added to a data source (``ogr:dbname=... table=...``) is dropped without touching its other
    layers. Anything else (a memory layer, a database) is left to QGIS.
    """
    parts = QgsProviderRegistry.instance().decodeUri("ogr", dest_id)
    path, layer_name = parts.get("path"), parts.get("layerName")
    if not path or not os.path.isfile(path):
        return
    try:
        if layer_name:
            source = ogr.Open(path, 1)
            for index in range(source.GetLayerCount()):
                if source.GetLayer(index).GetName() == layer_name:
                    source.DeleteLayer(index)
                    break
            source = None
        else:
            source = ogr.Open(path)
            driver = source.GetDriver()
            source = None
            driver.DeleteDataSource(path)
    except (RuntimeError, AttributeError):  # AttributeError: ogr.Open gave None (exceptions off)
        pass
