"""Style, show or hide, and order the outputs when QGIS loads them.

Only layers a run has just loaded are touched (never a user's existing layer): their style,
whether they are switched on in the Layers panel, and their order among themselves.
"""

from qgis.core import QgsLayerTreeLayer, QgsProcessingLayerPostProcessorInterface, QgsProject

from .base import resource_path

_KEEP_ALIVE = set()
"""Post-processors handed to QGIS and not run yet. QGIS holds them by C++ pointer only; without a Python
reference their Python side would be collected before they run (in a batch, long after the algorithm ended).
Each is released once it has styled its layer; one whose layer is never loaded stays (a few bytes)."""


class LoadOrder:
    """The outputs of one run, by rank (0 on top); shared by that run's post-processors."""

    def __init__(self):
        self.rank_of = {}

    def place(self, layer, rank, project):
        """Record ``layer`` and put this run's loaded outputs in rank order, where the first of them is."""
        self.rank_of[layer.id()] = rank
        node = project.layerTreeRoot().findLayer(layer.id())
        if node is None or node.parent() is None:
            return
        parent = node.parent()
        ours = [(index, child) for index, child in enumerate(parent.children())
                if isinstance(child, QgsLayerTreeLayer) and child.layerId() in self.rank_of]
        ranked = sorted((child for _, child in ours), key=lambda child: self.rank_of[child.layerId()])
        if [child for _, child in ours] == ranked:
            return
        # Clones go in first, the originals out after: a layer whose last tree node goes is removed from
        # the project by QGIS's layer-tree bridge.
        first = ours[0][0]
        for offset, child in enumerate(ranked):
            parent.insertChildNode(first + offset, child.clone())
        for _, child in ours:
            parent.removeChildNode(child)


class StyleOnLoad(QgsProcessingLayerPostProcessorInterface):
    """Loads a QML style into an output layer after Processing loads it; hides it or orders it if asked."""

    def __init__(self, qml_name, visible=True, order=None, rank=0):
        super().__init__()
        self._qml = resource_path("styles", qml_name)
        self._visible = visible
        self._order = order
        self._rank = rank

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS API name)
        """Style the freshly loaded output layer (never a user's existing layer)."""
        try:
            if layer is None or not layer.isValid():
                return
            layer.loadNamedStyle(self._qml)
            layer.triggerRepaint()
            project = context.project() or QgsProject.instance()
            node = project.layerTreeRoot().findLayer(layer.id())
            if node is not None and not self._visible:
                node.setItemVisibilityChecked(False)
            if self._order is not None:
                self._order.place(layer, self._rank, project)
        finally:
            _KEEP_ALIVE.discard(self)


def apply_style_on_load(context, layer_id, qml_name, visible=True, order=None, rank=0):
    """Register a style (and visibility, and a place in ``order``) for an output Processing will load."""
    if not context.willLoadLayerOnCompletion(layer_id):
        return
    processor = StyleOnLoad(qml_name, visible, order, rank)
    _KEEP_ALIVE.add(processor)
    context.layerToLoadOnCompletionDetails(layer_id).setPostProcessor(processor)
