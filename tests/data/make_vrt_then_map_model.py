"""Regenerate tests/data/vrt_then_map.model3, a graphical model for the tests.

The model takes the red, green and blue bands of the pre- and post-event image
as six single-band rasters, stacks each triple with gdal:buildvirtualraster
(one band per file, in R, G, B order) and feeds the two VRTs, a DEM and an
ONNX model to landslidemapper:mapeventlandslides. Its only output is the
landslide mask ("landslide_mask").

Run from the repository root:

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/data/make_vrt_then_map_model.py
"""

import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
MODEL_FILE = os.path.join(HERE, "vrt_then_map.model3")
BANDS = ("red", "green", "blue")


def start_qgis():
    """A headless QGIS with Processing and the plugin's provider (as tests/conftest.py does)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, REPO_ROOT)
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    from tests.conftest import PLUGIN_PACKAGE, plugin_parent_dir

    sys.path.insert(0, plugin_parent_dir())
    plugin = importlib.import_module(PLUGIN_PACKAGE).classFactory(None)
    plugin.initProcessing()
    return app, plugin


def build_model():
    """The QgsProcessingModelAlgorithm (QGIS must be running)."""
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterFile,
        QgsProcessingParameterRasterLayer,
    )
    from qgis.PyQt.QtCore import QPointF

    model = QgsProcessingModelAlgorithm("VRT then map", "Landslide Mapper tests", "landslidemappertests")
    model.setHelpContent({"ALG_DESC": "Stacks single-band R, G, B files into VRTs and maps event landslides."})

    def add_input(definition, y):
        component = QgsProcessingModelParameter(definition.name())
        component.setPosition(QPointF(100, y))
        model.addModelParameter(definition, component)

    y = 50
    for when in ("pre", "post"):
        for band in BANDS:
            add_input(QgsProcessingParameterRasterLayer(f"{when}_{band}", f"{when.capitalize()}-event {band} band"), y)
            y += 60
    add_input(QgsProcessingParameterRasterLayer("dem", "DEM"), y)
    add_input(QgsProcessingParameterFile("onnx_model", "ONNX model", extension="onnx"), y + 60)

    for when in ("pre", "post"):
        vrt = QgsProcessingModelChildAlgorithm("gdal:buildvirtualraster")
        vrt.setChildId(f"{when}_vrt")
        vrt.setDescription(f"{when.capitalize()}-event R, G, B stack")
        vrt.setPosition(QPointF(400, 100 if when == "pre" else 300))
        vrt.addParameterSources(
            "INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter(f"{when}_{band}") for band in BANDS]
        )
        vrt.addParameterSources("SEPARATE", [QgsProcessingModelChildParameterSource.fromStaticValue(True)])
        vrt.addParameterSources("RESOLUTION", [QgsProcessingModelChildParameterSource.fromStaticValue(0)])
        vrt.addParameterSources("PROJ_DIFFERENCE", [QgsProcessingModelChildParameterSource.fromStaticValue(False)])
        vrt.addParameterSources("ADD_ALPHA", [QgsProcessingModelChildParameterSource.fromStaticValue(False)])
        vrt.addParameterSources("RESAMPLING", [QgsProcessingModelChildParameterSource.fromStaticValue(0)])
        _set_defaults(vrt)
        model.addChildAlgorithm(vrt)

    mapper = QgsProcessingModelChildAlgorithm("landslidemapper:mapeventlandslides")
    mapper.setChildId("map")
    mapper.setDescription("Map event landslides")
    mapper.setPosition(QPointF(700, 200))
    for parameter, child in (("PRE_IMAGE", "pre_vrt"), ("POST_IMAGE", "post_vrt")):
        mapper.addParameterSources(parameter, [QgsProcessingModelChildParameterSource.fromChildOutput(child, "OUTPUT")])
    mapper.addParameterSources("DEM", [QgsProcessingModelChildParameterSource.fromModelParameter("dem")])
    mapper.addParameterSources("MODEL", [QgsProcessingModelChildParameterSource.fromModelParameter("onnx_model")])
    _set_defaults(mapper)
    output = QgsProcessingModelOutput("landslide_mask", "Landslide mask")
    output.setChildId("map")
    output.setChildOutputName("OUTPUT_MASK")
    output.setPosition(QPointF(950, 200))
    mapper.setModelOutputs({"landslide_mask": output})
    model.addChildAlgorithm(mapper)
    model.updateDestinationParameters()
    return model


def _set_defaults(child):
    """Give every input parameter left unset its default, as the modeler dialog does."""
    from qgis.core import QgsApplication, QgsProcessingModelChildParameterSource

    algorithm = QgsApplication.processingRegistry().algorithmById(child.algorithmId())
    for definition in algorithm.parameterDefinitions():
        if definition.isDestination() or definition.name() in child.parameterSources():
            continue
        if definition.defaultValue() is not None:
            child.addParameterSources(
                definition.name(), [QgsProcessingModelChildParameterSource.fromStaticValue(definition.defaultValue())])


def main():
    app, plugin = start_qgis()
    model = build_model()
    valid, errors = model.validate()
    if not valid:
        raise SystemExit("Invalid model: " + "; ".join(errors))
    if not model.toFile(MODEL_FILE):
        raise SystemExit(f"Cannot write {MODEL_FILE}")
    print(f"Wrote {MODEL_FILE}")
    plugin.unload()
    app.exitQgis()


if __name__ == "__main__":
    main()
