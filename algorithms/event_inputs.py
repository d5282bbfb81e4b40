"""The event's inputs as *Map event landslides* and *Adapt model to event* both ask for and read them.

Pre, post, DEM, image type and clouds/snow (polygons, raster, buffer) with the band numbers under Advanced:
declared and turned into core inputs here once, so that both dialogs ask the same way.
"""

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterBand,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..model.preprocess import RADIOMETRIES
from .inputs import parse_bands, raster_input
from .naming import parameter_label

RADIOMETRY_LABELS = (
    "Detect: 8-bit images as RGB photos, others as Sentinel-2 L2A",
    "8-bit RGB (values 0-255)",
    "Sentinel-2 L2A (reflectance x 10000)",
    "Sentinel-2 L2A from 2022 on (baseline 04.00+, values offset by 1000)",
)
DEFAULT_MASK_BUFFER_M = 100.0
"""Measured in benchmarks/bench_mask_buffer.py (README, "Clouds and snow"): the best pooled F1 with the
default model (session 21; 50 m was best with the first default model); removes most false alarms along
cloud edges at a small cost in recall."""


class EventInputs:
    """Mixin of a LandslideAlgorithm: the event's parameters and how they are read."""

    PRE_IMAGE = "PRE_IMAGE"
    PRE_BANDS = "PRE_BANDS"
    POST_IMAGE = "POST_IMAGE"
    POST_BANDS = "POST_BANDS"
    DEM = "DEM"
    DEM_BAND = "DEM_BAND"
    RADIOMETRY = "RADIOMETRY"
    MASK_RASTER = "MASK_RASTER"
    MASK_POLYGONS = "MASK_POLYGONS"
    MASK_BUFFER = "MASK_BUFFER"

    def event_parameters(self):
        """Pre, post, DEM and image type: the first parameters of the dialog."""
        return (
            QgsProcessingParameterRasterLayer(self.PRE_IMAGE, self.tr("Pre-event image")),
            QgsProcessingParameterRasterLayer(self.POST_IMAGE, self.tr("Post-event image")),
            QgsProcessingParameterRasterLayer(self.DEM, self.tr("Elevation model (DEM, metres)")),
            QgsProcessingParameterEnum(self.RADIOMETRY, self.tr("Image type"), options=list(RADIOMETRY_LABELS),
                                       defaultValue=0),
        )

    def mask_polygons_parameter(self):
        """Cloud and snow polygons (optional)."""
        return QgsProcessingParameterFeatureSource(
            self.MASK_POLYGONS, self.tr("Clouds and snow to leave out (polygons)"), [QgsProcessing.TypeVectorPolygon],
            optional=True)

    def event_advanced_parameters(self):
        """Cloud/snow raster and buffer, band numbers: for the Advanced group."""
        # Optional with a default: QGIS 3.22's modeler refuses a child whose non-optional number is left unset.
        return (
            QgsProcessingParameterRasterLayer(
                self.MASK_RASTER, self.tr("Clouds and snow to leave out (raster: non-zero = leave out)"), optional=True),
            QgsProcessingParameterNumber(
                self.MASK_BUFFER, self.tr("Also leave out this far around clouds and snow (m)"),
                QgsProcessingParameterNumber.Double, DEFAULT_MASK_BUFFER_M, optional=True, minValue=0.0, maxValue=5000.0),
            QgsProcessingParameterString(self.PRE_BANDS, self.tr("Pre-event image: red, green, blue band numbers"),
                                         "1,2,3", optional=True),
            QgsProcessingParameterString(self.POST_BANDS, self.tr("Post-event image: red, green, blue band numbers"),
                                         "1,2,3", optional=True),
            QgsProcessingParameterBand(self.DEM_BAND, self.tr("DEM band"), 1, self.DEM, optional=True),
        )

    def band_numbers(self, parameters, context, name):
        """The R, G, B band numbers of an image's bands parameter (its default when unset)."""
        value = parameters.get(name)
        if value in (None, ""):
            value = self.parameterDefinition(name).defaultValue()
        elif not isinstance(value, (list, tuple)):
            value = self.parameterAsString(parameters, name, context)
        return parse_bands(value, 3, parameter_label(self, name))

    def dem_input(self, parameters, context):
        """The DEM and its band."""
        band = self.parameterAsInt(parameters, self.DEM_BAND, context) if parameters.get(self.DEM_BAND) else 1
        return raster_input(self, parameters, context, self.DEM, (band,), parameter_label(self, self.DEM_BAND))

    def radiometry(self, parameters, context):
        """The core's radiometry name of the image type chosen."""
        return RADIOMETRIES[self.parameterAsEnum(parameters, self.RADIOMETRY, context)]

    def mask_buffer_m(self, parameters, context):
        """The cloud/snow buffer in metres (the default when unset)."""
        if parameters.get(self.MASK_BUFFER) in (None, ""):
            return DEFAULT_MASK_BUFFER_M
        return self.parameterAsDouble(parameters, self.MASK_BUFFER, context)
