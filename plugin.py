"""The QGIS plugin: registers the Processing provider and offers to install onnxruntime when it is missing."""

from qgis.core import Qgis, QgsApplication
from qgis.PyQt.QtWidgets import QAction, QPushButton

from .algorithms.base import icon
from .algorithms.provider import LandslideMapperProvider
from .model.session import onnxruntime_missing_reason

MENU = "Landslide Mapper"
INSTALL_TEXT = "Install onnxruntime…"


class LandslideMapperPlugin:
    """Registers :class:`LandslideMapperProvider`; adds *Plugins › Landslide Mapper › Install onnxruntime…*."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.install_action = None
        self.dialog = None

    def initProcessing(self):  # noqa: N802 (QGIS API name)
        """Called by QGIS and by qgis_process: register the provider."""
        if self.provider is None:
            self.provider = LandslideMapperProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (QGIS API name)
        """The algorithms live in the Processing Toolbox; the installer in the Plugins menu (and the message bar)."""
        self.initProcessing()
        if self.iface is None:
            return
        self.install_action = QAction(icon(), INSTALL_TEXT, self.iface.mainWindow())
        self.install_action.triggered.connect(self.show_installer)
        self.iface.addPluginToMenu(MENU, self.install_action)
        if onnxruntime_missing_reason():
            self._offer_install()

    def _offer_install(self):
        bar = self.iface.messageBar()
        item = bar.createMessage("Landslide Mapper", "needs the Python package onnxruntime to map landslides.")
        button = QPushButton(INSTALL_TEXT, item)
        button.clicked.connect(self.show_installer)
        item.layout().addWidget(button)
        bar.pushWidget(item, Qgis.Warning)

    def show_installer(self):
        """Open the install dialog (pip into the plugin's folder, with QGIS's Python)."""
        from .install_dialog import InstallDialog

        self.dialog = InstallDialog(parent=self.iface.mainWindow() if self.iface else None)
        self.dialog.finished_install.connect(self._installed)
        self.dialog.show()
        return self.dialog

    def _installed(self, ok, message):
        if ok and self.iface is not None:
            self.iface.messageBar().clearWidgets()
            self.iface.messageBar().pushMessage("Landslide Mapper", "onnxruntime is installed.", Qgis.Success, 10)
        if ok and self.provider is not None:
            self.provider.refreshAlgorithms()

    def unload(self):
        """Remove the provider and the menu entry."""
        if self.install_action is not None and self.iface is not None:
            self.iface.removePluginMenu(MENU, self.install_action)
            self.install_action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
