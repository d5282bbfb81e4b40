"""The QGIS plugin: registers the Processing provider, nothing else."""

from qgis.core import QgsApplication

from .algorithms.provider import LandslideMapperProvider


class LandslideMapperPlugin:
    """Registers :class:`LandslideMapperProvider`; has no GUI of its own."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        """Called by QGIS and by qgis_process: register the provider."""
        if self.provider is None:
            self.provider = LandslideMapperProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (QGIS API name)
        """The algorithms live in the Processing Toolbox."""
        self.initProcessing()

    def unload(self):
        """Remove the provider."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
