"""landslidemapper:evaluatelandslidemap through processing.run in a headless QGIS.

The cases (tests/helpers/evaluation_cases.py) are built so that TP, FP, FN and
TN are known exactly: the known case has TP 16, FP 12, FN 12, TN 150.
"""

import math
import os

import numpy as np
import pytest
from osgeo import gdal

from tests.helpers.evaluation_cases import (EPSG, GT, box_wkt, inside_boxes, make_known_case, pixel_box,
                                            reproject_wkt, write_vector)
from tests.helpers.scenes import write_raster

pytestmark = pytest.mark.qgis

ALG_ID = "landslidemapper:evaluatelandslidemap"
NUMBERS = ("TP", "FP", "FN", "TN", "PRECISION", "RECALL", "F1", "MCC")

gdal.UseExceptions()


def run(parameters, **kwargs):
    import processing

    return processing.run(ALG_ID, parameters, **kwargs)


def processing_exception():
    from qgis.core import QgsProcessingException

    return QgsProcessingException


@pytest.fixture()
def case(tmp_path):
    return make_known_case(str(tmp_path / "case"))


@pytest.fixture()
def out_dir(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def outputs(out_dir):
    return {"OUTPUT_CONFUSION": str(out_dir / "confusion.tif"), "OUTPUT_REPORT": str(out_dir / "report.html")}


def counts(result):
    return tuple(int(result[key]) for key in ("TP", "FP", "FN", "TN"))


def read_band(path):
    dataset = gdal.Open(path)
    return dataset.GetRasterBand(1).ReadAsArray(), dataset


# --------------------------------------------------------------------------- known answers


def test_known_case_counts_scores_raster_and_report(qgis_app, case, out_dir):
    result = run({"PREDICTION_RASTER": case.mask, "INVENTORY": case.inventory, "WINDOW_SIZE": 16, **outputs(out_dir)})
    assert counts(result) == (16, 12, 12, 150)
    assert result["PRECISION"] == pytest.approx(16 / 28)
    assert result["RECALL"] == pytest.approx(16 / 28)
    assert result["F1"] == pytest.approx(32 / 56)
    assert result["MCC"] == pytest.approx((16 * 150 - 12 * 12) / math.sqrt(28 * 28 * 162 * 162))

    classes, dataset = read_band(result["OUTPUT_CONFUSION"])
    assert result["OUTPUT_CONFUSION"] == str(out_dir / "confusion.tif")
    assert dataset.GetGeoTransform() == GT
    assert dataset.GetRasterBand(1).DataType == gdal.GDT_Byte
    assert dataset.GetRasterBand(1).GetNoDataValue() == 0
    expected = np.full(case.shape, 4, np.uint8)
    expected[case.truth & case.predicted] = 1
    expected[~case.truth & case.predicted] = 2
    expected[case.truth & ~case.predicted] = 3
    expected[~case.valid] = 0
    np.testing.assert_array_equal(classes, expected)

    page = (out_dir / "report.html").read_text(encoding="utf-8")
    for text in ("<td>16</td><td>1,600.0</td>", "<td>12</td><td>1,200.0</td>", "<td>150</td><td>15,000.0</td>",
                 f"<td>{16 / 28:.4f}</td>", "<th>Predicted mask</th><td>mask</td>",
                 "<th>Inventory</th><td>inventory</td>", "16 x 12 pixels of 10 x 10 m in EPSG:32633"):
        assert text in page
    assert sorted(os.listdir(out_dir)) == ["confusion.tif", "report.html"]


def test_many_windows_on_a_larger_map(qgis_app, tmp_path, out_dir):
    rng = np.random.default_rng(3)
    values = (rng.random((70, 90)) < 0.2).astype(np.uint8)
    mask = write_raster(str(tmp_path / "big_mask.tif"), values, GT, EPSG, nodata=255)
    boxes = [pixel_box(5, 5, 20, 30), pixel_box(40, 50, 25, 35)]
    inventory = write_vector(str(tmp_path / "big_inventory.gpkg"), [box_wkt(b) for b in boxes], EPSG)
    truth = inside_boxes((70, 90), boxes)
    predicted = values == 1
    expected = (int((truth & predicted).sum()), int((~truth & predicted).sum()), int((truth & ~predicted).sum()),
                int((~truth & ~predicted).sum()))
    # WINDOW_SIZE reaches the core: 5 x 6 windows of 16 px give the whole-array answer (that any window size
    # does is the core's test, tests/model/test_evaluation.py).
    result = run({"PREDICTION_RASTER": mask, "INVENTORY": inventory, "WINDOW_SIZE": 16,
                  "OUTPUT_CONFUSION": str(out_dir / "c16.tif")})
    assert counts(result) == expected


def test_polygons_as_the_prediction(qgis_app, case, tmp_path, out_dir):
    predicted_boxes = [pixel_box(2, 3, 4, 6), pixel_box(9, 0, 2, 2)]  # the known case's predicted blocks
    predicted = write_vector(str(tmp_path / "predicted.gpkg"),
                             [reproject_wkt(box_wkt(b), EPSG, 4326) for b in predicted_boxes], 4326)
    result = run({"PREDICTION_POLYGONS": predicted, "INVENTORY": case.inventory, "PIXEL_SIZE": 10.0,
                  "WINDOW_SIZE": 16, **outputs(out_dir)})
    # Grid over inventory and predictions: cols 0..13, rows 2..10 of the known case, all evaluated.
    assert counts(result) == (16, 12, 12, 14 * 9 - 40)
    classes, dataset = read_band(result["OUTPUT_CONFUSION"])
    assert classes.shape == (9, 14)
    assert dataset.GetGeoTransform() == (GT[0], 10.0, 0.0, GT[3] - 20, 0.0, -10.0)
    page = (out_dir / "report.html").read_text(encoding="utf-8")
    assert "<th>Predicted polygons</th><td>predicted</td>" in page and "14 x 9 pixels of 10 x 10 m" in page


def test_polygons_with_another_pixel_size(qgis_app, case, tmp_path, out_dir):
    predicted_box = pixel_box(2, 3, 4, 6)
    predicted = write_vector(str(tmp_path / "predicted.gpkg"), [box_wkt(predicted_box)], EPSG)
    result = run({"PREDICTION_POLYGONS": predicted, "INVENTORY": case.inventory, "PIXEL_SIZE": 15.0,
                  "OUTPUT_CONFUSION": str(out_dir / "c15.tif")})
    classes, dataset = read_band(result["OUTPUT_CONFUSION"])
    geotransform = dataset.GetGeoTransform()
    # Union of the boxes (x 500020..500140, y 5199900..5199980) snapped outward to multiples of 15 m.
    assert geotransform == (500010.0, 15.0, 0.0, 5199990.0, 0.0, -15.0)
    assert classes.shape == (6, 9)  # x 500010..500145, y 5199900..5199990
    # Pixel centres (x.5 m) never fall on the 10 m box edges: numpy gives the exact answer.
    truth = inside_boxes(classes.shape, case.inventory_boxes, geotransform)
    predicted_array = inside_boxes(classes.shape, [predicted_box], geotransform)
    expected = (int((truth & predicted_array).sum()), int((~truth & predicted_array).sum()),
                int((truth & ~predicted_array).sum()), int((~truth & ~predicted_array).sum()))
    assert counts(result) == expected
    assert expected[0] > 0 and expected[1] > 0 and expected[2] > 0


def test_evaluation_area_and_valid_mask(qgis_app, case, tmp_path):
    west = (GT[0], GT[3] - 120, GT[0] + 80, GT[3])  # cols 0..7
    area = write_vector(str(tmp_path / "area.gpkg"), [box_wkt(west)], EPSG)
    valid = np.ones(case.shape, np.uint8)
    valid[:5, :] = 0  # rows 0..4 invalid
    valid_path = write_raster(str(tmp_path / "valid.tif"), valid, GT, EPSG)
    result = run({"PREDICTION_RASTER": case.mask, "INVENTORY": case.inventory, "EVALUATION_AREA": area,
                  "VALID_MASK": valid_path})
    evaluated = case.valid.copy()
    evaluated[:, 8:] = False
    evaluated[:5, :] = False
    t, p = case.truth[evaluated], case.predicted[evaluated]
    assert counts(result) == (int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum()), int((~t & ~p).sum()))
    assert counts(result) == (4, 5, 1, 46)


def test_inventory_from_a_memory_layer_in_another_crs(qgis_app, case, tmp_path):
    from qgis.core import QgsFeature, QgsGeometry, QgsVectorLayer

    layer = QgsVectorLayer("Polygon?crs=EPSG:4326", "slides in memory", "memory")
    features = []
    for box in case.inventory_boxes:
        feature = QgsFeature()
        feature.setGeometry(QgsGeometry.fromWkt(reproject_wkt(box_wkt(box), EPSG, 4326)))
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    result = run({"PREDICTION_RASTER": case.mask, "INVENTORY": layer, "OUTPUT_REPORT": str(tmp_path / "r.html")})
    assert counts(result) == (16, 12, 12, 150)
    assert "<th>Inventory</th><td>slides in memory</td>" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_no_positive_anywhere_gives_the_documented_scores(qgis_app, case, tmp_path):
    quiet = (GT[0], GT[3] - 70, GT[0] + 20, GT[3] - 10)  # no inventory, no prediction
    area = write_vector(str(tmp_path / "quiet.gpkg"), [box_wkt(quiet)], EPSG)
    result = run({"PREDICTION_RASTER": case.mask, "INVENTORY": case.inventory, "EVALUATION_AREA": area})
    assert counts(result) == (0, 0, 0, 12)
    assert [result[key] for key in ("PRECISION", "RECALL", "F1", "MCC")] == [0.0, 0.0, 0.0, 0.0]


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("both", [True, False])
def test_refuses_both_or_neither_prediction(qgis_app, case, both):
    parameters = {"INVENTORY": case.inventory}
    if both:
        parameters.update(PREDICTION_RASTER=case.mask, PREDICTION_POLYGONS=case.inventory)
    with pytest.raises(processing_exception(), match="not both" if both else "neither is set"):
        run(parameters)


def test_refuses_disjoint_inputs(qgis_app, case, tmp_path):
    far = write_vector(str(tmp_path / "far.gpkg"), [box_wkt((600000, 5100000, 600100, 5100100))], EPSG)
    with pytest.raises(processing_exception(), match="do not overlap"):
        run({"PREDICTION_RASTER": case.mask, "INVENTORY": far})
    with pytest.raises(processing_exception(), match="do not overlap"):
        run({"PREDICTION_POLYGONS": far, "INVENTORY": case.inventory})


def test_refuses_an_inventory_without_crs(qgis_app, case, tmp_path):
    inventory = write_vector(str(tmp_path / "no_crs.shp"), [box_wkt(case.inventory_boxes[0])], None, "ESRI Shapefile")
    with pytest.raises(processing_exception(), match="no coordinate reference system"):
        run({"PREDICTION_RASTER": case.mask, "INVENTORY": inventory})


def test_refuses_a_mask_without_crs(qgis_app, case, tmp_path):
    values = gdal.Open(case.mask).ReadAsArray()
    mask = write_raster(str(tmp_path / "no_crs.tif"), values, GT, None, nodata=255)
    with pytest.raises(processing_exception(), match="no coordinate reference system"):
        run({"PREDICTION_RASTER": mask, "INVENTORY": case.inventory})


def test_mask_raster_leaves_out_non_zero_like_the_mapping_and_old_valid_mask_still_works(qgis_app, case, tmp_path):
    left_out = np.zeros(case.shape, np.uint8)
    left_out[:5, :] = 7  # rows 0..4 left out (non-zero), the convention of Map event landslides' cloud mask
    left_out[5, :3] = 0
    left_out_path = write_raster(str(tmp_path / "clouds.tif"), left_out, GT, EPSG)
    valid_path = write_raster(str(tmp_path / "valid.tif"), (left_out == 0).astype(np.uint8), GT, EPSG)
    evaluated = case.valid & (left_out == 0)
    t, p = case.truth[evaluated], case.predicted[evaluated]
    expected = (int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum()), int((~t & ~p).sum()))
    new = run({"PREDICTION_RASTER": case.mask, "INVENTORY": case.inventory, "MASK_RASTER": left_out_path})
    old = run({"PREDICTION_RASTER": case.mask, "INVENTORY": case.inventory, "VALID_MASK": valid_path})
    assert counts(new) == expected == counts(old)
    assert counts(new) != counts(run({"PREDICTION_RASTER": case.mask, "INVENTORY": case.inventory}))


def test_refuses_an_evaluation_area_outside_the_prediction(qgis_app, case, tmp_path):
    far = write_vector(str(tmp_path / "far_area.gpkg"), [box_wkt((600000, 5100000, 600100, 5100100))], EPSG)
    with pytest.raises(processing_exception(), match="evaluation area .* is empty here"):
        run({"PREDICTION_RASTER": case.mask, "INVENTORY": case.inventory, "EVALUATION_AREA": far})


def test_refuses_when_no_pixel_is_evaluated_and_writes_nothing(qgis_app, case, tmp_path, out_dir):
    zeros = write_raster(str(tmp_path / "zeros.tif"), np.zeros(case.shape, np.uint8), GT, EPSG)
    with pytest.raises(processing_exception(), match="No pixel was evaluated"):
        run({"PREDICTION_RASTER": case.mask, "INVENTORY": case.inventory, "VALID_MASK": zeros, **outputs(out_dir)})
    assert os.listdir(out_dir) == []


# --------------------------------------------------------------------------- progress, cancel


def test_cancel_between_windows_leaves_no_output(qgis_app, tmp_path, out_dir):
    from qgis.core import QgsProcessingFeedback

    values = np.zeros((64, 64), np.uint8)
    mask = write_raster(str(tmp_path / "mask64.tif"), values, GT, EPSG, nodata=255)
    inventory = write_vector(str(tmp_path / "inv64.gpkg"), [box_wkt(pixel_box(3, 3, 5, 5))], EPSG)
    feedback = QgsProcessingFeedback()
    seen = []

    def on_progress(value):
        seen.append(value)
        if value >= 30:
            feedback.cancel()

    feedback.progressChanged.connect(on_progress)
    with pytest.raises(processing_exception(), match="(?i)cancel"):
        run({"PREDICTION_RASTER": mask, "INVENTORY": inventory, "WINDOW_SIZE": 16, **outputs(out_dir)}, feedback=feedback)
    assert 30 <= max(seen) < 50  # stopped after the window that crossed 30 % (16 windows: 5.9 % each)
    assert os.listdir(out_dir) == []


def test_progress_rises_per_window_to_100(qgis_app, tmp_path):
    from qgis.core import QgsProcessingFeedback

    mask = write_raster(str(tmp_path / "mask48.tif"), np.zeros((48, 48), np.uint8), GT, EPSG, nodata=255)
    inventory = write_vector(str(tmp_path / "inv48.gpkg"), [box_wkt(pixel_box(3, 3, 5, 5))], EPSG)
    feedback = QgsProcessingFeedback()
    seen = []
    feedback.progressChanged.connect(seen.append)
    run({"PREDICTION_RASTER": mask, "INVENTORY": inventory, "WINDOW_SIZE": 16}, feedback=feedback)
    assert seen == sorted(seen) and seen[-1] == 100
    assert len([value for value in seen if value < 100]) >= 9  # one step per window (3 x 3)


# --------------------------------------------------------------------------- style, outputs, help


def test_confusion_style_on_load(qgis_app, case, out_dir):
    import importlib

    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsRasterLayer

    styling = importlib.import_module("landslide_mapper.algorithms.styling")
    result = run({"PREDICTION_RASTER": case.mask, "INVENTORY": case.inventory, **outputs(out_dir)})
    layer = QgsRasterLayer(result["OUTPUT_CONFUSION"], "confusion")
    assert layer.isValid()
    styling.StyleOnLoad("confusion.qml").postProcessLayer(layer, QgsProcessingContext(), QgsProcessingFeedback())
    renderer = layer.renderer()
    assert renderer.type() == "paletted"
    classes = {entry.value: entry for entry in renderer.classes()}
    assert sorted(classes) == [1, 2, 3, 4]
    assert classes[1].color.name() == "#1a9641" and "TP" in classes[1].label
    assert classes[2].color.name() == "#fd8d3c" and "FP" in classes[2].label
    assert classes[3].color.name() == "#756bb1" and "FN" in classes[3].label
    assert classes[4].color.alpha() == 0  # true negatives transparent: the image under them is not dimmed


def test_loaded_confusion_raster_gets_the_style(qgis_app, case, out_dir):
    import processing
    from qgis.core import QgsProject

    project = QgsProject.instance()
    project.removeAllMapLayers()
    try:
        result = processing.runAndLoadResults(ALG_ID, {"PREDICTION_RASTER": case.mask, "INVENTORY": case.inventory,
                                                       **outputs(out_dir)})
        layers = {os.path.normpath(layer.source()): layer for layer in project.mapLayers().values()}
        confusion_layer = layers[os.path.normpath(result["OUTPUT_CONFUSION"])]
        assert confusion_layer.renderer().type() == "paletted"
        labels = {entry.value: entry.label for entry in confusion_layer.renderer().classes()}
        assert labels == {1: "True positive (TP)", 2: "False positive (FP)", 3: "False negative (FN)",
                          4: "True negative (TN)"}
        assert confusion_layer.name() == "Map vs inventory"  # short: not cut off in the Layers panel
    finally:
        project.removeAllMapLayers()


def test_declared_outputs_and_help(qgis_app):
    from qgis.core import QgsApplication, QgsProcessingOutputNumber

    algorithm = QgsApplication.processingRegistry().algorithmById(ALG_ID)
    assert algorithm is not None and algorithm.displayName() == "Evaluate landslide map"
    definitions = {output.name(): output for output in algorithm.outputDefinitions()}
    for name in NUMBERS:
        assert isinstance(definitions[name], QgsProcessingOutputNumber), name
    assert definitions["OUTPUT_REPORT"].type() == "outputHtml"  # shown in the Results Viewer
    assert definitions["OUTPUT_CONFUSION"].type() == "outputRaster"
    help_text = algorithm.shortHelpString()
    assert "Degenerate cases" in help_text and "MCC is 0" in help_text and "1 = true positive" in help_text


def test_outputs_feed_a_model(qgis_app, case, out_dir):
    """The numbers are usable in the graphical modeler: a model exposes them as its own outputs."""
    from qgis.core import (QgsProcessingContext, QgsProcessingFeedback, QgsProcessingModelAlgorithm,
                           QgsProcessingModelChildAlgorithm, QgsProcessingModelChildParameterSource,
                           QgsProcessingModelOutput, QgsProcessingModelParameter, QgsProcessingParameterFeatureSource,
                           QgsProcessingParameterRasterLayer)

    model = QgsProcessingModelAlgorithm("evaluate", "tests")
    model.addModelParameter(QgsProcessingParameterRasterLayer("mask", "mask"), QgsProcessingModelParameter("mask"))
    model.addModelParameter(QgsProcessingParameterFeatureSource("slides", "slides"), QgsProcessingModelParameter("slides"))
    child = QgsProcessingModelChildAlgorithm(ALG_ID)
    child.setChildId("evaluate")
    child.addParameterSources("PREDICTION_RASTER", [QgsProcessingModelChildParameterSource.fromModelParameter("mask")])
    child.addParameterSources("INVENTORY", [QgsProcessingModelChildParameterSource.fromModelParameter("slides")])
    report = QgsProcessingModelOutput("report", "report")
    report.setChildOutputName("OUTPUT_REPORT")
    child.setModelOutputs({"report": report})
    model.addChildAlgorithm(child)
    assert model.validate()[0], model.validate()[1]
    context = QgsProcessingContext()
    results, ok = model.run({"mask": case.mask, "slides": case.inventory, "evaluate:report": str(out_dir / "r.html")},
                            context, QgsProcessingFeedback())
    assert ok
    children = results["CHILD_RESULTS"]["evaluate"]
    assert (children["TP"], children["FP"], children["FN"], children["TN"]) == (16, 12, 12, 150)
    assert os.path.isfile(str(out_dir / "r.html"))
