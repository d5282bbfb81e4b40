"""The Processing provider: a stable id and an explicit list of algorithms."""

from qgis.core import QgsProcessingProvider

from .base import icon
from .evaluate_landslide_map import EvaluateLandslideMap
from .map_event_landslides import MapEventLandslides


class LandslideMapperProvider(QgsProcessingProvider):
    """Provider ``landslidemapper``."""

    def loadAlgorithms(self):  # noqa: N802 (QGIS API name)
        """Register every algorithm of the plugin."""
        for algorithm in (MapEventLandslides(), EvaluateLandslideMap()):
            self.addAlgorithm(algorithm)

    def id(self):
        """Stable id used in algorithm ids (``landslidemapper:...``); never change it."""
        return "landslidemapper"

    def name(self):
        """Name shown in the Toolbox."""
        return "Landslide Mapper"

    def icon(self):
        """The plugin icon."""
        return icon()

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802 (QGIS API name)
        """Rasters are written as GeoTIFF only."""
        return ["tif"]
