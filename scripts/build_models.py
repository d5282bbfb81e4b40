"""Write the graphical models the plugin ships (resources/models/*.model3) with QGIS's own model API.

Usage (a headless QGIS with the plugin importable as ``landslide_mapper``; see tests/conftest.py)::

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/build_models.py

``adapt_then_map.model3``: *Adapt model to event* on the analyst's mapping, then *Map event landslides* over the
whole event with the adapted model. tests/algorithms/test_shipped_models.py checks that the shipped file is what
this script writes, and runs it.
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_DIR = os.path.join(REPO, "resources", "models")
ADAPT = "landslidemapper:adaptmodeltoevent"
MAP = "landslidemapper:mapeventlandslides"


def adapt_then_map():
    """The model: its inputs feed both steps; the adapted model feeds the mapping."""
    from qgis.core import (
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterFeatureSource,
        QgsProcessingParameterNumber,
        QgsProcessingParameterRasterLayer,
    )
    from qgis.PyQt.QtCore import QPointF

    model = QgsProcessingModelAlgorithm("Adapt model, then map the event", "Landslide mapping", "landslidemapping")
    model.setHelpContent({"ALG_DESC": "Adapts the model to the event from the landslides you mapped in part of it "
                                      "(Adapt model to event), then maps the whole event with the adapted model "
                                      "(Map event landslides).",
                          "ALG_CREATOR": "Landslide Mapper"})
    inputs = (
        ("pre_image", QgsProcessingParameterRasterLayer("pre_image", "Pre-event image")),
        ("post_image", QgsProcessingParameterRasterLayer("post_image", "Post-event image")),
        ("dem", QgsProcessingParameterRasterLayer("dem", "Elevation model (DEM, metres)")),
        ("landslides", QgsProcessingParameterFeatureSource("landslides", "Landslides you mapped (polygons)",
                                                           [QgsProcessing.TypeVectorPolygon])),
        ("area", QgsProcessingParameterFeatureSource("area", "Area where your mapping is complete (polygons)",
                                                     [QgsProcessing.TypeVectorPolygon])),
        ("clouds", QgsProcessingParameterFeatureSource("clouds", "Clouds and snow to leave out (polygons)",
                                                       [QgsProcessing.TypeVectorPolygon], optional=True)),
        ("minutes", QgsProcessingParameterNumber("minutes", "Time budget for the adaptation (minutes)",
                                                 QgsProcessingParameterNumber.Double, 10.0, minValue=0.5)),
    )
    for index, (name, definition) in enumerate(inputs):
        component = QgsProcessingModelParameter(name)
        component.setPosition(QPointF(120 + 170 * index, 60))
        model.addModelParameter(definition, component)

    def source(name):
        return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]

    adapt = QgsProcessingModelChildAlgorithm(ADAPT)
    adapt.setChildId("adapt")
    adapt.setDescription("Adapt model to event")
    adapt.setPosition(QPointF(420, 220))
    for parameter, name in (("PRE_IMAGE", "pre_image"), ("POST_IMAGE", "post_image"), ("DEM", "dem"),
                            ("LANDSLIDES", "landslides"), ("AREA", "area"), ("MASK_POLYGONS", "clouds"),
                            ("MINUTES", "minutes")):
        adapt.addParameterSources(parameter, source(name))
    adapted = QgsProcessingModelOutput("adapted_model", "Adapted model")
    adapted.setChildId("adapt")
    adapted.setChildOutputName("OUTPUT")
    adapted.setPosition(QPointF(640, 220))
    adapt.setModelOutputs({"adapted_model": adapted})
    model.addChildAlgorithm(adapt)

    mapping = QgsProcessingModelChildAlgorithm(MAP)
    mapping.setChildId("map")
    mapping.setDescription("Map event landslides with the adapted model")
    mapping.setPosition(QPointF(420, 380))
    for parameter, name in (("PRE_IMAGE", "pre_image"), ("POST_IMAGE", "post_image"), ("DEM", "dem"),
                            ("MASK_POLYGONS", "clouds")):
        mapping.addParameterSources(parameter, source(name))
    mapping.addParameterSources("MODEL", [QgsProcessingModelChildParameterSource.fromChildOutput("adapt", "OUTPUT")])
    outputs = {}
    for index, (key, child_output, description) in enumerate((
            ("landslides_mapped", "OUTPUT_POLYGONS", "Landslides"),
            ("probability", "OUTPUT_PROBABILITY", "Landslide probability"),
            ("mask", "OUTPUT_MASK", "Landslide mask"))):
        output = QgsProcessingModelOutput(key, description)
        output.setChildId("map")
        output.setChildOutputName(child_output)
        output.setPosition(QPointF(660, 360 + 40 * index))
        outputs[key] = output
    mapping.setModelOutputs(outputs)
    model.addChildAlgorithm(mapping)
    return model


def main():
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    from tests.conftest import plugin_parent_dir  # the plugin importable as landslide_mapper

    sys.path.insert(0, plugin_parent_dir())
    from landslide_mapper.algorithms.provider import LandslideMapperProvider

    QgsApplication.processingRegistry().addProvider(LandslideMapperProvider())
    os.makedirs(MODELS_DIR, exist_ok=True)
    path = os.path.join(MODELS_DIR, "adapt_then_map.model3")
    model = adapt_then_map()
    if not model.toFile(path):
        raise SystemExit(f"could not write {path}")
    print(path)


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    main()
