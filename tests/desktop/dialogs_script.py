"""Run inside a real QGIS desktop (``qgis --code``) under Xvfb by tests/test_desktop_dialogs.py.

As a user would: load the sample event, find the algorithms in the Processing Toolbox by search,
open each one's dialog from the Toolbox, fill it from the loaded layers, run it, and screenshot the
toolbox, the dialogs and the map. Writes ``report.json`` and PNGs into $LANDSLIDE_DESKTOP_OUT, then
quits through File > Exit. Every step is chained with QTimer.singleShot: the dialogs are modal.
"""

import json
import os
import traceback

from qgis.core import QgsProcessingOutputLayerDefinition, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtCore import QPoint, QTimer
from qgis.PyQt.QtWidgets import QApplication, QDialogButtonBox, QMessageBox, QScrollArea
from qgis.utils import iface, plugins

OUT = os.environ["LANDSLIDE_DESKTOP_OUT"]
EVENT = os.environ["LANDSLIDE_SAMPLE_EVENT"]
report = {"steps": [], "errors": []}
state = {}


def save_report():
    with open(os.path.join(OUT, "report.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1, default=str)


def quit_qgis():
    """Leave through File > Exit; if QGIS is still here 15 s later, record what holds it and end the process."""
    if state.get("quitting"):
        return
    state["quitting"] = True
    save_report()
    for widget in QApplication.topLevelWidgets():
        if widget is not iface.mainWindow() and widget.isVisible() and hasattr(widget, "reject"):
            widget.reject()
    QgsProject.instance().setDirty(False)
    QTimer.singleShot(15000, exit_fallback)
    QTimer.singleShot(1500, discard_changes)
    iface.actionExit().trigger()


def discard_changes():
    """Answer QGIS's questions on closing the project (save changes? lose temporary layers?) as a user leaving
    without saving would: Discard / Yes."""
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, QMessageBox) and widget.isVisible():
            for answer in (QMessageBox.Discard, QMessageBox.Yes):
                if widget.button(answer) is not None:
                    report.setdefault("exit_answered", []).append(widget.text())
                    save_report()
                    widget.button(answer).click()
                    break
    QTimer.singleShot(1000, discard_changes)


def exit_fallback():
    report["exit_blocked_by"] = visible_windows()
    report["exit_boxes"] = [(w.text(), [b.text() for b in w.buttons()]) for w in QApplication.topLevelWidgets()
                            if isinstance(w, QMessageBox) and w.isVisible()]
    grab(iface.mainWindow(), "exit_blocked.png")
    save_report()
    os._exit(2)


def step(function, delay_ms=300):
    """Run ``function`` later; on any error record it and quit."""
    def run():
        try:
            report["steps"].append(function.__name__)
            function()
        except Exception:  # noqa: BLE001 - report everything, then leave
            report["errors"].append(traceback.format_exc())
            quit_qgis()
    QTimer.singleShot(delay_ms, run)


def wait_for(condition, then, timeout_ms=180000, waited=0):
    """Poll ``condition`` every 250 ms, then run ``then``."""
    if condition():
        step(then, 500)
    elif waited > timeout_ms:
        report["errors"].append(f"timed out waiting before {then.__name__}; visible windows: {visible_windows()}")
        quit_qgis()
    else:
        QTimer.singleShot(250, lambda: wait_for(condition, then, timeout_ms, waited + 250))


def grab(widget, name):
    path = os.path.join(OUT, name)
    widget.grab().save(path)
    report.setdefault("screenshots", []).append(name)


def toolbox():
    return plugins["processing"].toolbox


def algorithm_dialog():
    """The visible Processing algorithm dialog, if one is open."""
    for widget in QApplication.topLevelWidgets():
        if widget.isVisible() and hasattr(widget, "mainWidget") and hasattr(widget, "runButton"):
            return widget
    return None


def visible_windows():
    return [type(w).__name__ + ":" + w.windowTitle() for w in QApplication.topLevelWidgets() if w.isVisible()]


def dialog_facts(dialog):
    """What a user sees: labels of the visible parameters, where the outputs are, whether Help works."""
    panel = dialog.mainWidget()
    scroll = panel.findChild(QScrollArea)
    content = scroll.widget()
    labels, outputs = [], {}
    for name, wrapper in panel.wrappers.items():
        widget = wrapper.wrappedWidget()
        if widget is None or not widget.isVisible():
            continue
        definition = wrapper.parameterDefinition()
        label = wrapper.wrappedLabel()
        labels.append(label.text() if label is not None else definition.description())
        if definition.isDestination():
            bottom = widget.mapTo(content, QPoint(0, widget.height())).y()
            outputs[name] = bottom <= scroll.viewport().height() + scroll.verticalScrollBar().value()
    help_button = dialog.buttonBox().button(QDialogButtonBox.Help)
    return {"labels": labels, "scroll_max": scroll.verticalScrollBar().maximum(),
            "viewport_height": scroll.viewport().height(), "outputs_visible": outputs,
            "help_enabled": bool(help_button and help_button.isEnabled()),
            "size": [dialog.width(), dialog.height()]}


# ------------------------------------------------------------------ the session

def load_event():
    iface.mainWindow().resize(1600, 1000)
    project = QgsProject.instance()
    state["pre"] = QgsRasterLayer(os.path.join(EVENT, "pre.tif"), "pre")
    state["post"] = QgsRasterLayer(os.path.join(EVENT, "post.tif"), "post")
    state["dem"] = QgsRasterLayer(os.path.join(EVENT, "dem.tif"), "dem")
    state["clouds"] = QgsVectorLayer(os.path.join(EVENT, "clouds.gpkg"), "clouds", "ogr")
    state["inventory"] = QgsVectorLayer(os.path.join(EVENT, "inventory.gpkg"), "inventory", "ogr")
    for key in ("dem", "pre", "post", "clouds", "inventory"):
        assert state[key].isValid(), key
        project.addMapLayer(state[key])
    QgsProject.instance().layerTreeRoot().findLayer(state["inventory"].id()).setItemVisibilityChecked(False)
    QgsProject.instance().layerTreeRoot().findLayer(state["dem"].id()).setItemVisibilityChecked(False)
    QgsProject.instance().layerTreeRoot().findLayer(state["pre"].id()).setItemVisibilityChecked(False)
    state["post_renderer"] = state["post"].renderer().type()
    iface.mapCanvas().setExtent(state["post"].extent())
    plugins["processing"].toolbox.setVisible(True)
    step(search_toolbox, 1500)


def search_toolbox():
    box = toolbox()
    found = {}
    for word in ("earthquake", "ONNX", "inventory", "fine-tune"):
        box.searchBox.setText(word)
        QApplication.processEvents()
        model = box.algorithmTree.model()
        names = []

        def walk(parent):
            for row in range(model.rowCount(parent)):
                index = model.index(row, 0, parent)
                algorithm = box.algorithmTree.algorithmForIndex(index)
                if algorithm is not None:
                    names.append(algorithm.id())
                walk(index)
        walk(box.algorithmTree.rootIndex())
        found[word] = names
    report["toolbox_search"] = found
    box.searchBox.setText("earthquake")
    box.algorithmTree.expandAll()
    state["map_alg"] = "landslidemapper:mapeventlandslides"
    step(grab_toolbox, 500)


def grab_toolbox():
    grab(toolbox(), "toolbox_search_earthquake.png")
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById(state["map_alg"])
    report["map_tooltip"] = alg.shortDescription()
    open_from_toolbox(state["map_alg"], fill_map_dialog)


def open_from_toolbox(algorithm_id, then):
    """Select the algorithm in the Toolbox tree and run it as a double-click does (the modal dialog)."""
    box = toolbox()
    box.searchBox.setText(algorithm_id.split(":")[1])
    QApplication.processEvents()
    box.algorithmTree.setFilterString("")
    box.searchBox.setText("")
    index = _find_index(box, algorithm_id)
    box.algorithmTree.setCurrentIndex(index)
    wait_for(lambda: algorithm_dialog() is not None, then, 60000)
    QTimer.singleShot(0, box.executeAlgorithm)  # blocks in exec_() until the dialog closes


def _find_index(box, algorithm_id):
    model = box.algorithmTree.model()

    def walk(parent):
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            algorithm = box.algorithmTree.algorithmForIndex(index)
            if algorithm is not None and algorithm.id() == algorithm_id:
                return index
            found = walk(index)
            if found is not None:
                return found
        return None
    index = walk(box.algorithmTree.rootIndex())
    assert index is not None, f"{algorithm_id} is not in the Toolbox"
    return index


def load(path):
    """An output the dialog writes to ``path`` and opens in the project ("Open output file after running")."""
    return QgsProcessingOutputLayerDefinition(path, QgsProject.instance())


def fill_map_dialog():
    dialog = algorithm_dialog()
    state["dialog"] = dialog
    wrappers = dialog.mainWidget().wrappers
    report["map_prefilled"] = {name: str(wrappers[name].parameterValue()) for name in (
        "PRE_IMAGE", "POST_IMAGE", "DEM", "THRESHOLD", "MIN_AREA_M2", "MASK_BUFFER", "RADIOMETRY", "PRE_BANDS")}
    report["map_dialog"] = dialog_facts(dialog)
    grab(dialog, "map_dialog_opened.png")
    dialog.resize(760, 940)  # as tall as a 1,000 px screen allows
    QApplication.processEvents()
    report["map_dialog_tall"] = dialog_facts(dialog)
    out = os.path.join(OUT, "map")
    os.makedirs(out, exist_ok=True)
    dialog.setParameters({
        "PRE_IMAGE": state["pre"].id(), "POST_IMAGE": state["post"].id(), "DEM": state["dem"].id(),
        "MASK_POLYGONS": state["clouds"].id(),
        "OUTPUT_POLYGONS": load(os.path.join(out, "landslides.gpkg")),
        "OUTPUT_PROBABILITY": load(os.path.join(out, "probability.tif")),
        "OUTPUT_MASK": load(os.path.join(out, "mask.tif")),
    })
    step(run_map_dialog, 500)


def run_map_dialog():
    dialog = state["dialog"]
    grab(dialog, "map_dialog_filled.png")
    dialog.algorithmFinished.connect(lambda ok, results: state.__setitem__("map_results", (ok, results)))
    dialog.runButton().click()
    wait_for(lambda: "map_results" in state, after_map_run)


def after_map_run():
    dialog = state["dialog"]
    ok, results = state["map_results"]
    report["map_ok"] = ok
    report["map_results"] = {k: str(v) for k, v in results.items()}
    grab(dialog, "map_dialog_log.png")
    dialog.reject()
    step(grab_map, 1500)


def layer_tree():
    root = QgsProject.instance().layerTreeRoot()
    return [{"name": node.name(), "visible": node.isVisible()} for node in root.findLayers()]


def grab_map():
    report["layers_after_map"] = layer_tree()
    report["post_renderer_unchanged"] = state["post"].renderer().type() == state["post_renderer"]
    canvas = iface.mapCanvas()
    canvas.setExtent(state["post"].extent())
    canvas.refreshAllLayers()
    wait_for(lambda: not canvas.isDrawing(), grab_map_now, 30000)


def grab_map_now():
    QApplication.processEvents()
    grab(iface.mainWindow(), "map_window.png")
    grab(iface.mapCanvas(), "map_canvas.png")
    open_from_toolbox("landslidemapper:evaluatelandslidemap", fill_evaluate_dialog)


def fill_evaluate_dialog():
    dialog = algorithm_dialog()
    state["dialog"] = dialog
    report["evaluate_dialog"] = dialog_facts(dialog)
    dialog.resize(760, 940)
    QApplication.processEvents()
    mask_layer = [layer for layer in QgsProject.instance().mapLayers().values() if layer.name() == "Landslide mask"][0]
    out = os.path.join(OUT, "evaluate")
    os.makedirs(out, exist_ok=True)
    dialog.setParameters({
        "PREDICTION_RASTER": mask_layer.id(), "INVENTORY": state["inventory"].id(),
        "OUTPUT_CONFUSION": load(os.path.join(out, "confusion.tif")), "OUTPUT_REPORT": os.path.join(out, "evaluation.html"),
    })
    step(run_evaluate_dialog, 500)


def run_evaluate_dialog():
    dialog = state["dialog"]
    grab(dialog, "evaluate_dialog_filled.png")
    dialog.algorithmFinished.connect(lambda ok, results: state.__setitem__("evaluate_results", (ok, results)))
    dialog.runButton().click()
    wait_for(lambda: "evaluate_results" in state, after_evaluate_run)


def after_evaluate_run():
    dialog = state["dialog"]
    ok, results = state["evaluate_results"]
    report["evaluate_ok"] = ok
    report["evaluate_results"] = {k: str(v) for k, v in results.items()}
    grab(dialog, "evaluate_dialog_log.png")
    dialog.reject()
    step(grab_evaluation, 1500)


def grab_evaluation():
    report["layers_after_evaluate"] = layer_tree()
    root = QgsProject.instance().layerTreeRoot()
    for layer in QgsProject.instance().mapLayers().values():  # show the confusion classes over the post image
        node = root.findLayer(layer.id())
        if layer.name() not in ("Map vs inventory", "post"):
            node.setItemVisibilityChecked(False)
    canvas = iface.mapCanvas()
    canvas.refreshAllLayers()
    wait_for(lambda: not canvas.isDrawing(), grab_evaluation_now, 30000)


def grab_evaluation_now():
    QApplication.processEvents()
    grab(iface.mainWindow(), "evaluate_window.png")
    open_from_toolbox("landslidemapper:adaptmodeltoevent", look_at_adapt_dialog)


def look_at_adapt_dialog():
    """The adaptation dialog as it opens from the Toolbox: what it asks, prefilled; closed without running."""
    dialog = algorithm_dialog()
    report["adapt_dialog"] = dialog_facts(dialog)
    report["adapt_prefilled"] = {name: str(wrapper.parameterValue())
                                 for name, wrapper in dialog.mainWidget().wrappers.items()
                                 if name in ("MINUTES", "MODEL", "PRE_IMAGE", "POST_IMAGE", "DEM")}
    grab(dialog, "adapt_dialog_opened.png")
    dialog.reject()
    step(quit_qgis, 500)


QTimer.singleShot(300000, lambda: (report["errors"].append("watchdog: 300 s"), quit_qgis()))
from processing.core.ProcessingConfig import ProcessingConfig  # noqa: E402

ProcessingConfig.setSettingValue(ProcessingConfig.KEEP_DIALOG_OPEN, True)
step(load_event, 3000)
