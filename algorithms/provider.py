"""The Processing provider: a stable id and an explicit list of algorithms."""

import glob
import os

from qgis.core import QgsApplication, QgsProcessingModelAlgorithm, QgsProcessingProvider

from .adapt_model_to_event import AdaptModelToEvent
from .base import icon, resource_path
from .evaluate_landslide_map import EvaluateLandslideMap
from .map_event_landslides import MapEventLandslides
from .trainer_process import SETTING_PYTHON, SETTING_PYTHON_LABEL


class ShippedModel(QgsProcessingModelAlgorithm):
    """A graphical model of ``resources/models``, listed under a stable lowercase id (its file name)."""

    def __init__(self, path):
        super().__init__()
        self._path = path
        self.loaded = self.fromFile(path)

    def name(self):
        """Stable id: the file name without ``.model3`` and underscores (``adaptthenmap``)."""
        return os.path.splitext(os.path.basename(self._path))[0].replace("_", "")

    def displayName(self):  # noqa: N802 (QGIS API name)
        """The model's own name."""
        return super().name()

    def icon(self):
        """The plugin icon."""
        return icon()

    def createInstance(self):  # noqa: N802 (QGIS API name)
        """A fresh copy per run."""
        return ShippedModel(self._path)


class LandslideMapperProvider(QgsProcessingProvider):
    """Provider ``landslidemapper``."""

    def load(self):
        """Declare the provider's Processing setting (the trainer's Python), then load the algorithms."""
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting
        except ImportError:  # no processing plugin: the setting falls back to the .venv beside the plugin
            pass
        else:
            ProcessingConfig.settingIcons[self.name()] = self.icon()
            ProcessingConfig.addSetting(Setting(self.name(), SETTING_PYTHON, SETTING_PYTHON_LABEL, "",
                                                valuetype=Setting.FILE))
            ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        # The shipped models find their child algorithms (ours) only once this provider is registered:
        # load them again then, so that the listed instances have their outputs too.
        QgsApplication.processingRegistry().providerAdded.connect(self._registered)
        return True

    def _registered(self, provider_id):
        if provider_id == self.id():
            QgsApplication.processingRegistry().providerAdded.disconnect(self._registered)
            self.refreshAlgorithms()

    def unload(self):
        """Remove the setting again."""
        try:
            from processing.core.ProcessingConfig import ProcessingConfig
        except ImportError:
            return
        ProcessingConfig.removeSetting(SETTING_PYTHON)

    def loadAlgorithms(self):  # noqa: N802 (QGIS API name)
        """Register every algorithm of the plugin, and the graphical models shipped in resources/models."""
        for algorithm in (MapEventLandslides(), EvaluateLandslideMap(), AdaptModelToEvent()):
            self.addAlgorithm(algorithm)
        for path in sorted(glob.glob(resource_path("models", "*.model3"))):
            model = ShippedModel(path)
            if model.loaded:
                self.addAlgorithm(model)

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
