"""Apply the plugin's QML styles to outputs when QGIS loads them."""

from qgis.core import QgsProcessingLayerPostProcessorInterface

from .base import resource_path

_KEEP_ALIVE = set()
"""Post-processors handed to QGIS and not run yet. QGIS holds them by C++ pointer only; without a Python
reference their Python side would be collected before they run (in a batch, long after the algorithm ended).
Each is released once it has styled its layer; one whose layer is never loaded stays (a few bytes)."""


class StyleOnLoad(QgsProcessingLayerPostProcessorInterface):
    """Loads a QML style into an output layer after Processing loads it."""

    def __init__(self, qml_name):
        super().__init__()
        self._qml = resource_path("styles", qml_name)

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API name)
        """Style the freshly loaded output layer (never a user's existing layer)."""
        try:
            if layer is not None and layer.isValid():
                layer.loadNamedStyle(self._qml)
                layer.triggerRepaint()
        finally:
            _KEEP_ALIVE.discard(self)


def apply_style_on_load(context, layer_id, qml_name):
    """Register a style for an output that Processing will load on completion."""
    if not context.willLoadLayerOnCompletion(layer_id):
        return
    processor = StyleOnLoad(qml_name)
    _KEEP_ALIVE.add(processor)
    context.layerToLoadOnCompletionDetails(layer_id).setPostProcessor(processor)
