"""The streaming evaluation core (model/evaluation.py) against whole-array numpy answers."""

import math
import os

import numpy as np
import pytest
from osgeo import gdal

from model import evaluation
from model.errors import CancelledError, GridError, InputDataError
from model.evaluation import (FN, FP, NODATA, TN, TP, EvaluationRequest, check_request,
                              confusion_classes, evaluate, report_html)
from model.grid import Grid, RasterInput
from model.masks import PolygonMask, VectorInput
from model.metrics import Confusion, confusion
from tests.helpers.evaluation_cases import (EPSG, GT, box_wkt, inside_boxes, inside_triangle, make_known_case,
                                            pixel_box, reproject_wkt, triangle_wkt, write_vector)
from tests.helpers.scenes import srs_wkt, write_raster

gdal.UseExceptions()


def read_band(path):
    dataset = gdal.Open(path)
    return dataset.GetRasterBand(1).ReadAsArray(), dataset


def expected_classes(truth, predicted, evaluated):
    """Whole-array classes, written out independently of confusion_classes."""
    out = np.zeros(truth.shape, np.uint8)
    out[truth & predicted] = TP
    out[~truth & predicted] = FP
    out[truth & ~predicted] = FN
    out[~truth & ~predicted] = TN
    out[~evaluated] = NODATA
    return out


# --------------------------------------------------------------------------- a scene with random content


@pytest.fixture()
def random_scene(tmp_path):
    """A 53 x 71 mask raster with random values and nodata, and an inventory of boxes and a triangle
    whose edges do not follow pixel edges."""
    rng = np.random.default_rng(7)
    shape = (53, 71)
    values = (rng.random(shape) < 0.3).astype(np.uint8)
    values[rng.random(shape) < 0.05] = 255
    mask = write_raster(str(tmp_path / "mask.tif"), values, GT, EPSG, nodata=255)
    x0, y0 = GT[0], GT[3]
    boxes = [(x0 + 33, y0 - 207, x0 + 181, y0 - 41), (x0 + 402, y0 - 498, x0 + 653, y0 - 311),
             (x0 + 150, y0 - 150, x0 + 260, y0 - 90)]  # the third overlaps the first
    triangle = [(x0 + 20, y0 - 520), (x0 + 310, y0 - 505), (x0 + 140, y0 - 330)]
    inventory = write_vector(str(tmp_path / "inventory.gpkg"), [box_wkt(b) for b in boxes] + [triangle_wkt(triangle)], EPSG)
    truth = inside_boxes(shape, boxes) | inside_triangle(shape, triangle)
    return {"mask": mask, "inventory": inventory, "shape": shape, "predicted": values == 1, "valid": values != 255,
            "truth": truth, "boxes": boxes}


@pytest.mark.parametrize("window_px", [5, 16, 64, 1024])  # one-pixel windows: on the known case below
def test_windowed_comparison_equals_the_whole_array(random_scene, tmp_path, window_px):
    scene = random_scene
    out = str(tmp_path / f"confusion_{window_px}.tif")
    request = EvaluationRequest(VectorInput(scene["inventory"]), prediction_raster=RasterInput(scene["mask"]),
                                window_px=window_px, confusion_path=out)
    result = evaluate(request)
    whole = confusion(scene["truth"], scene["predicted"], scene["valid"])
    assert whole.tp > 50 and whole.fp > 50 and whole.fn > 50  # a non-trivial case
    assert result.confusion == whole
    classes, dataset = read_band(out)
    np.testing.assert_array_equal(classes, expected_classes(scene["truth"], scene["predicted"], scene["valid"]))
    assert dataset.GetGeoTransform() == GT
    assert dataset.GetRasterBand(1).GetNoDataValue() == NODATA
    assert result.areas_m2 == {"tp": whole.tp * 100.0, "fp": whole.fp * 100.0, "fn": whole.fn * 100.0,
                               "tn": whole.tn * 100.0}
    assert result.windows == math.ceil(53 / window_px) * math.ceil(71 / window_px)


def test_no_window_is_larger_than_the_window_size(random_scene, monkeypatch):
    shapes = []
    original = evaluation.compare_window

    def recording(truth, predicted, evaluated):
        shapes.append(truth.shape)
        return original(truth, predicted, evaluated)

    monkeypatch.setattr(evaluation, "compare_window", recording)
    evaluate(EvaluationRequest(VectorInput(random_scene["inventory"]),
                               prediction_raster=RasterInput(random_scene["mask"]), window_px=16))
    assert len(shapes) == 4 * 5
    assert max(max(shape) for shape in shapes) == 16
    assert sum(r * c for r, c in shapes) == 53 * 71


@pytest.mark.parametrize("window_px", [1, 5])
def test_the_known_case(tmp_path, window_px):
    case = make_known_case(str(tmp_path))
    out = str(tmp_path / "confusion.tif")
    result = evaluate(EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(case.mask),
                                        window_px=window_px, confusion_path=out))
    assert (result.confusion.tp, result.confusion.fp, result.confusion.fn, result.confusion.tn) == case.expected
    assert result.windows == math.ceil(case.shape[0] / window_px) * math.ceil(case.shape[1] / window_px)
    classes, _ = read_band(out)
    np.testing.assert_array_equal(classes, expected_classes(case.truth, case.predicted, case.valid))
    assert result.scores()["precision"] == pytest.approx(16 / 28)
    assert result.scores()["mcc"] == pytest.approx((16 * 150 - 12 * 12) / math.sqrt(28 * 28 * 162 * 162))


# --------------------------------------------------------------------------- CRS, area, valid mask


@pytest.mark.parametrize("inventory_epsg", [4326, 3857, 32632])
def test_inventory_in_another_crs_is_transformed_to_the_grid(random_scene, tmp_path, inventory_epsg):
    scene = random_scene
    wkts = [reproject_wkt(box_wkt(b), EPSG, inventory_epsg) for b in scene["boxes"]]
    inventory = write_vector(str(tmp_path / f"inventory_{inventory_epsg}.gpkg"), wkts, inventory_epsg)
    result = evaluate(EvaluationRequest(VectorInput(inventory), prediction_raster=RasterInput(scene["mask"]), window_px=20))
    # Box edges lie 2-7 m from the nearest pixel centre: the round trip through another CRS moves them far less.
    truth = inside_boxes(scene["shape"], scene["boxes"])
    assert result.confusion == confusion(truth, scene["predicted"], scene["valid"])


def test_evaluation_area_restricts_and_crops_the_grid(random_scene, tmp_path):
    scene = random_scene
    area_box = (GT[0] + 97, GT[3] - 333, GT[0] + 402, GT[3] - 64)  # pixel centres decide: cols 10..39, rows 6..32
    area = write_vector(str(tmp_path / "area.gpkg"), [box_wkt(area_box)], EPSG)
    out = str(tmp_path / "confusion.tif")
    request = EvaluationRequest(VectorInput(scene["inventory"]), prediction_raster=RasterInput(scene["mask"]),
                                evaluation_area=VectorInput(area), window_px=8, confusion_path=out)
    plan = check_request(request)
    # The grid is the mask's lattice cropped to every pixel the area's box reaches into: cols 9..40, rows 6..33.
    assert (plan.prediction_row_px, plan.prediction_col_px) == (6, 9)
    assert (plan.grid.width_px, plan.grid.height_px) == (32, 28)
    result = evaluate(request, plan=plan)
    in_area = inside_boxes(scene["shape"], [area_box])
    assert in_area.sum() == 30 * 27
    evaluated = scene["valid"] & in_area
    assert result.confusion == confusion(scene["truth"], scene["predicted"], evaluated)
    classes, dataset = read_band(out)
    np.testing.assert_array_equal(classes, expected_classes(scene["truth"], scene["predicted"], evaluated)[6:34, 9:41])
    assert dataset.GetGeoTransform() == (GT[0] + 90, 10.0, 0.0, GT[3] - 60, 0.0, -10.0)


def test_valid_mask_on_another_grid(random_scene, tmp_path):
    scene = random_scene
    coarse = np.ones((27, 36), np.uint8)  # 20 m pixels over the same origin
    coarse[3:10, 5:20] = 0
    coarse[15:20, 2:8] = 9  # nodata: not valid either
    coarse[0, :] = 7  # any non-zero value is valid
    valid_path = write_raster(str(tmp_path / "valid.tif"), coarse, (GT[0], 20.0, 0.0, GT[3], 0.0, -20.0), EPSG, nodata=9)
    result = evaluate(EvaluationRequest(VectorInput(scene["inventory"]), prediction_raster=RasterInput(scene["mask"]),
                                        valid_mask=RasterInput(valid_path), window_px=13))
    fine = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)[:53, :71]
    valid = scene["valid"] & (fine != 0) & (fine != 9)
    assert result.confusion == confusion(scene["truth"], scene["predicted"], valid)


def test_valid_mask_that_covers_part_of_the_grid(tmp_path):
    case = make_known_case(str(tmp_path))
    half = write_raster(str(tmp_path / "valid.tif"), np.ones((12, 8), np.uint8), GT, EPSG)  # west half only
    result = evaluate(EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(case.mask),
                                        valid_mask=RasterInput(half)))
    valid = case.valid.copy()
    valid[:, 8:] = False
    assert result.confusion == confusion(case.truth, case.predicted, valid)
    assert result.grid.width_px == 8  # cropped to the mask's footprint


def test_geographic_mask_counts_ellipsoidal_areas(tmp_path):
    gt = (15.0, 0.001, 0.0, 46.0, 0.0, -0.001)
    values = np.ones((40, 30), np.uint8)
    mask = write_raster(str(tmp_path / "mask.tif"), values, gt, 4326, nodata=255)
    inventory = write_vector(str(tmp_path / "inventory.gpkg"), [box_wkt((15.0101, 45.9799, 15.0199, 45.9701))], 4326)
    result = evaluate(EvaluationRequest(VectorInput(inventory), prediction_raster=RasterInput(mask)))
    assert result.confusion == Confusion(tp=100, fp=1100, fn=0, tn=0)
    # 0.001 deg x 0.001 deg at 46 N: about 77.4 m x 111.1 m
    per_pixel = result.areas_m2["tp"] / 100
    assert per_pixel == pytest.approx(77.4 * 111.1, rel=0.01)
    assert result.areas_m2["fp"] + result.areas_m2["tp"] == pytest.approx(1200 * per_pixel, rel=1e-3)
    assert "40 pixels of 0.001 x 0.001 ° in EPSG:4326" in report_html(result)


def test_pixel_areas_of_a_geographic_grid_add_up_to_the_ellipsoid():
    grid = Grid(srs_wkt(4326), -180.0, 90.0, 1.0, 1.0, 360, 180)
    areas = grid.row_pixel_areas_m2(0, 180)
    assert areas.sum() * 360 == pytest.approx(510_065_621.7e6, rel=1e-9)  # WGS 84 ellipsoid
    assert areas[0] < areas[89] and areas[89] == pytest.approx(areas[90])


# --------------------------------------------------------------------------- polygons as the prediction


def test_polygon_prediction_on_a_built_metric_grid(tmp_path):
    case = make_known_case(str(tmp_path))
    # Predicted polygons: the two predicted blocks of the known case, in WGS 84.
    predicted_boxes = [pixel_box(2, 3, 4, 6), pixel_box(9, 0, 2, 2)]
    predicted = write_vector(str(tmp_path / "predicted.gpkg"),
                             [reproject_wkt(box_wkt(b), EPSG, 4326) for b in predicted_boxes], 4326)
    request = EvaluationRequest(VectorInput(case.inventory), prediction_polygons=VectorInput(predicted),
                                pixel_size_m=10.0, window_px=4, confusion_path=str(tmp_path / "c.tif"))
    plan = check_request(request)
    # The inventory's CRS is metric: the grid is in it, over the union of both, snapped outward to 10 m.
    assert plan.grid.crs_label() == f"EPSG:{EPSG}"
    assert (plan.grid.x_min, plan.grid.y_max) == (GT[0], GT[3] - 20)
    assert (plan.grid.width_px, plan.grid.height_px) == (14, 9)  # cols 0..13, rows 2..10
    result = evaluate(request, plan=plan)
    # Every grid pixel is evaluated: the known case's counts, less the mask's nodata, plus no extra TN.
    truth = case.truth[2:11, 0:14]
    predicted_array = inside_boxes((12, 16), predicted_boxes)[2:11, 0:14]
    assert result.confusion == confusion(truth, predicted_array)
    assert (result.confusion.tp, result.confusion.fp, result.confusion.fn) == (16, 12, 12)
    classes, dataset = read_band(result.confusion_path)
    assert dataset.GetGeoTransform() == (GT[0], 10.0, 0.0, GT[3] - 20, 0.0, -10.0)
    np.testing.assert_array_equal(classes, expected_classes(truth, predicted_array, np.ones_like(truth)))


def test_polygon_prediction_with_an_evaluation_area_and_another_pixel_size(tmp_path):
    case = make_known_case(str(tmp_path))
    predicted = write_vector(str(tmp_path / "predicted.gpkg"), [box_wkt(pixel_box(2, 3, 4, 6))], EPSG)
    area_box = (GT[0], GT[3] - 120, GT[0] + 160, GT[3])  # the whole known case
    area = write_vector(str(tmp_path / "area.gpkg"), [box_wkt(area_box)], EPSG)
    result = evaluate(EvaluationRequest(VectorInput(case.inventory), prediction_polygons=VectorInput(predicted),
                                        evaluation_area=VectorInput(area), pixel_size_m=15.0, window_px=3))
    # Snapped outward to multiples of 15 m: 499995..500160 x 5199870..5200005.
    grid = result.grid
    assert (grid.x_min, grid.y_max, grid.width_px, grid.height_px, grid.pixel_width) == (499995.0, 5200005.0, 11, 9, 15.0)
    shape = (9, 11)
    truth = inside_boxes(shape, case.inventory_boxes, grid.geotransform)
    predicted_array = inside_boxes(shape, [pixel_box(2, 3, 4, 6)], grid.geotransform)
    evaluated = inside_boxes(shape, [area_box], grid.geotransform)
    assert not evaluated.all()  # the outer ring of the snapped grid lies outside the area
    assert result.confusion == confusion(truth, predicted_array, evaluated)
    assert result.confusion.tp > 0 and result.confusion.fp > 0 and result.confusion.fn > 0
    assert result.areas_m2["tp"] == result.confusion.tp * 225.0


def test_empty_predicted_polygons_mean_nothing_was_detected(tmp_path):
    case = make_known_case(str(tmp_path))
    predicted = write_vector(str(tmp_path / "none.gpkg"), [], EPSG)
    result = evaluate(EvaluationRequest(VectorInput(case.inventory), prediction_polygons=VectorInput(predicted)))
    assert result.confusion.tp == result.confusion.fp == 0
    assert result.confusion.fn == 28
    assert (result.confusion.precision, result.confusion.recall, result.confusion.f1, result.confusion.mcc) == (0, 0, 0, 0)


def test_geographic_polygons_get_a_utm_grid(tmp_path):
    inventory = write_vector(str(tmp_path / "inventory.gpkg"), [box_wkt((141.9, 42.7, 141.901, 42.701))], 4326)
    predicted = write_vector(str(tmp_path / "predicted.gpkg"), [box_wkt((141.9, 42.7, 141.9005, 42.701))], 4326)
    plan = check_request(EvaluationRequest(VectorInput(inventory), prediction_polygons=VectorInput(predicted)))
    assert plan.grid.crs_label() == "EPSG:32654"


# --------------------------------------------------------------------------- degenerate cases


def test_no_positive_in_truth_or_prediction_gives_the_documented_scores(tmp_path):
    case = make_known_case(str(tmp_path))
    quiet = (GT[0], GT[3] - 70, GT[0] + 20, GT[3] - 10)  # rows 1..6, cols 0..1: no inventory, no prediction
    area = write_vector(str(tmp_path / "area.gpkg"), [box_wkt(quiet)], EPSG)
    result = evaluate(EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(case.mask),
                                        evaluation_area=VectorInput(area)))
    assert result.confusion == Confusion(0, 0, 0, 12)
    scores = result.scores()
    assert (scores["precision"], scores["recall"], scores["f1"], scores["mcc"]) == (0.0, 0.0, 0.0, 0.0)
    page = report_html(result)
    assert "recall is reported as 0" in page and "precision is reported as 0" in page and "MCC is undefined" in page


def test_false_alarms_only(tmp_path):
    case = make_known_case(str(tmp_path))
    corner = (GT[0], GT[3] - 110, GT[0] + 20, GT[3] - 90)  # rows 9..10, cols 0..1: the prediction C only
    area = write_vector(str(tmp_path / "area.gpkg"), [box_wkt(corner)], EPSG)
    result = evaluate(EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(case.mask),
                                        evaluation_area=VectorInput(area)))
    assert result.confusion == Confusion(0, 4, 0, 0)
    assert (result.confusion.precision, result.confusion.recall, result.confusion.mcc) == (0.0, 0.0, 0.0)


def test_confusion_classes_codes():
    truth = np.array([[1, 1, 0, 0, 1]], bool)
    predicted = np.array([[1, 0, 1, 0, 1]], bool)
    evaluated = np.array([[1, 1, 1, 1, 0]], bool)
    np.testing.assert_array_equal(confusion_classes(truth, predicted, evaluated), [[TP, FN, FP, TN, NODATA]])


# --------------------------------------------------------------------------- refusals


def test_disjoint_inventory_is_refused(tmp_path):
    case = make_known_case(str(tmp_path))
    far = write_vector(str(tmp_path / "far.gpkg"), [box_wkt((600000, 5100000, 600100, 5100100))], EPSG)
    with pytest.raises(GridError, match="do not overlap"):
        check_request(EvaluationRequest(VectorInput(far), prediction_raster=RasterInput(case.mask)))


def test_disjoint_predicted_polygons_are_refused(tmp_path):
    case = make_known_case(str(tmp_path))
    far = write_vector(str(tmp_path / "far.gpkg"), [box_wkt((600000, 5100000, 600100, 5100100))], EPSG)
    with pytest.raises(GridError, match="do not overlap"):
        check_request(EvaluationRequest(VectorInput(case.inventory), prediction_polygons=VectorInput(far)))


def test_evaluation_area_outside_the_prediction_is_refused(tmp_path):
    case = make_known_case(str(tmp_path))
    far = write_vector(str(tmp_path / "far.gpkg"), [box_wkt((600000, 5100000, 600100, 5100100))], EPSG)
    with pytest.raises(GridError, match="evaluation area .* is empty here"):
        check_request(EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(case.mask),
                                        evaluation_area=VectorInput(far)))


def test_evaluation_area_without_polygons_is_refused(tmp_path):
    case = make_known_case(str(tmp_path))
    empty = write_vector(str(tmp_path / "empty.gpkg"), [], EPSG)
    with pytest.raises(GridError, match="holds no polygon"):
        check_request(EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(case.mask),
                                        evaluation_area=VectorInput(empty)))


def test_valid_mask_outside_is_refused(tmp_path):
    case = make_known_case(str(tmp_path))
    far = write_raster(str(tmp_path / "valid.tif"), np.ones((4, 4), np.uint8), (600000, 10, 0, 5100000, 0, -10), EPSG)
    with pytest.raises(GridError, match="valid-data mask"):
        check_request(EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(case.mask),
                                        valid_mask=RasterInput(far)))


def test_no_evaluated_pixel_is_refused_and_leaves_no_output(tmp_path):
    case = make_known_case(str(tmp_path))
    zeros = write_raster(str(tmp_path / "valid.tif"), np.zeros((12, 16), np.uint8), GT, EPSG)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(GridError, match="No pixel was evaluated"):
        evaluate(EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(case.mask),
                                   valid_mask=RasterInput(zeros), confusion_path=str(out / "c.tif"),
                                   report_path=str(out / "r.html")))
    assert os.listdir(out) == []


@pytest.mark.parametrize("both", [True, False])
def test_both_or_neither_prediction_is_refused(tmp_path, both):
    case = make_known_case(str(tmp_path))
    request = EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(case.mask) if both else None,
                                prediction_polygons=VectorInput(case.inventory) if both else None)
    with pytest.raises(InputDataError, match="both" if both else "neither"):
        check_request(request)


def test_missing_crs_is_refused(tmp_path):
    case = make_known_case(str(tmp_path))
    no_crs_mask = write_raster(str(tmp_path / "no_crs.tif"), np.ones((4, 4), np.uint8), GT, None)
    with pytest.raises(InputDataError, match="no coordinate reference system"):
        check_request(EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(no_crs_mask)))
    for path, driver in ((str(tmp_path / "no_crs.shp"), "ESRI Shapefile"), (str(tmp_path / "no_crs.gpkg"), "GPKG")):
        inventory = write_vector(path, [box_wkt(case.inventory_boxes[0])], None, driver)
        with pytest.raises(InputDataError, match="no coordinate reference system"):
            check_request(EvaluationRequest(VectorInput(inventory), prediction_raster=RasterInput(case.mask)))
    with pytest.raises(InputDataError, match="no coordinate reference system"):
        check_request(EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(case.mask),
                                        valid_mask=RasterInput(no_crs_mask)))


def test_empty_inventory_is_refused(tmp_path):
    case = make_known_case(str(tmp_path))
    empty = write_vector(str(tmp_path / "empty.gpkg"), [], EPSG)
    with pytest.raises(InputDataError, match="inventory .* holds no polygon"):
        check_request(EvaluationRequest(VectorInput(empty), prediction_raster=RasterInput(case.mask)))


def test_mask_values_other_than_0_and_1_are_refused(tmp_path):
    case = make_known_case(str(tmp_path))
    values = np.zeros((12, 16), np.uint8)
    values[5, 5] = 255  # no nodata set: 255 is a value
    mask = write_raster(str(tmp_path / "mask_255.tif"), values, GT, EPSG)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputDataError, match="value 255"):
        evaluate(EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(mask),
                                   confusion_path=str(out / "c.tif")))
    assert os.listdir(out) == []


def test_rotated_mask_is_refused(tmp_path):
    case = make_known_case(str(tmp_path))
    rotated = write_raster(str(tmp_path / "rotated.tif"), np.ones((4, 4), np.uint8), (GT[0], 10, 1, GT[3], 1, -10), EPSG)
    with pytest.raises(InputDataError, match="north-up"):
        check_request(EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(rotated)))


def test_too_large_polygon_grid_is_refused(tmp_path):
    case = make_known_case(str(tmp_path))
    with pytest.raises(GridError, match="more than the limit"):
        check_request(EvaluationRequest(VectorInput(case.inventory), prediction_polygons=VectorInput(case.inventory),
                                        pixel_size_m=0.01, max_pixels=1_000_000))


# --------------------------------------------------------------------------- outputs, progress, cancel


def test_outputs_appear_complete_with_the_report(tmp_path):
    case = make_known_case(str(tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    seen = []
    result = evaluate(
        EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(case.mask), window_px=4,
                          confusion_path=str(out / "c.tif"), report_path=str(out / "r.html"),
                          input_names=(("Inventory", "slides <2018>"),)),
        progress=seen.append)
    assert sorted(os.listdir(out)) == ["c.tif", "r.html"]
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 3 * 4 + 1
    page = (out / "r.html").read_text(encoding="utf-8")
    assert "slides &lt;2018&gt;" in page
    for text in ("<td>16</td><td>1,600.0</td>", "<td>12</td><td>1,200.0</td>", "<td>150</td><td>15,000.0</td>",
                 f"<td>{16 / 28:.4f}</td>", f"<td>{16 / 28:.4f}</td>", "EPSG:32633"):
        assert text in page
    dataset = gdal.Open(result.confusion_path)
    table = dataset.GetRasterBand(1).GetColorTable()
    assert table.GetColorEntry(TP)[:3] == (26, 150, 65) and table.GetColorEntry(NODATA)[3] == 0


@pytest.mark.parametrize("after_windows", [0, 3, 12, 13])
def test_cancel_leaves_no_output(tmp_path, after_windows):
    case = make_known_case(str(tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    calls = []

    def is_cancelled():
        calls.append(1)
        return len(calls) > after_windows

    with pytest.raises(CancelledError):
        evaluate(EvaluationRequest(VectorInput(case.inventory), prediction_raster=RasterInput(case.mask), window_px=4,
                                   confusion_path=str(out / "c.tif"), report_path=str(out / "r.html")),
                 is_cancelled=is_cancelled)
    assert os.listdir(out) == []


# --------------------------------------------------------------------------- the shared polygon rasteriser


def test_polygon_mask_windows_stitch_to_the_whole_grid_on_a_mapping_grid(random_scene):
    grid = Grid.square(srs_wkt(EPSG), GT[0], GT[3], 10.0, 71, 53)
    polygons = PolygonMask(VectorInput(random_scene["inventory"]), grid, "inventory")
    whole = polygons.read(0, 0, 53, 71)
    np.testing.assert_array_equal(whole, random_scene["truth"])
    stitched = np.zeros_like(whole)
    for row in range(0, 53, 9):
        for col in range(0, 71, 11):
            part = polygons.read(row, col, 9, 11)[: 53 - row, : 71 - col]
            stitched[row : row + 9, col : col + 11] = part
    np.testing.assert_array_equal(stitched, whole)
    assert not polygons.read(-500, -500, 10, 10).any()  # far from every polygon
    assert polygons.count == 4


# --------------------------------------------------------------------------- memory


MEMORY_PROBE = r"""
import sys
from osgeo import gdal
from model.evaluation import EvaluationRequest, evaluate
from model.grid import RasterInput
from model.masks import VectorInput

def peak_kib():  # this process image's own peak (getrusage's ru_maxrss survives exec: it is the parent's)
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))


folder, size = sys.argv[1], int(sys.argv[2])
gdal.SetCacheMax(2**20)  # a full block cache from the start: only the run itself can grow
before = peak_kib()
result = evaluate(EvaluationRequest(VectorInput(folder + "/inventory.gpkg"), prediction_raster=RasterInput(folder + "/mask.tif"),
                                    window_px=256, confusion_path=folder + "/c.tif", gdal_cache_mb=1))
assert result.confusion.total == size * size and result.confusion.tp > 0
print((peak_kib() - before) / 1024.0)
"""


def _write_large_case(folder, size):
    """A tiled size x size mask (10 % landslide) and 49 inventory boxes spread over it."""
    dataset = gdal.GetDriverByName("GTiff").Create(str(folder / "mask.tif"), size, size, 1, gdal.GDT_Byte,
                                                   ["TILED=YES", "COMPRESS=DEFLATE"])
    dataset.SetGeoTransform(GT)
    dataset.SetProjection(srs_wkt(EPSG))
    band = dataset.GetRasterBand(1)
    band.SetNoDataValue(255)
    rng = np.random.default_rng(0)
    for row in range(0, size, 256):
        band.WriteArray((rng.random((min(256, size - row), size)) < 0.1).astype(np.uint8), 0, row)
    band = dataset = None
    extent = size * 10.0
    boxes = [(GT[0] + x, GT[3] - y - 300, GT[0] + x + 200, GT[3] - y)
             for x in np.arange(0, extent - 400, extent / 7) for y in np.arange(0, extent - 400, extent / 7)]
    write_vector(str(folder / "inventory.gpkg"), [box_wkt(b) for b in boxes], EPSG)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak memory from /proc (Linux)")
def test_memory_does_not_grow_with_the_scene(tmp_path):
    """Peak memory an evaluation adds for a 4096 x 4096 map (16 MiB as bytes, 128 MiB as int64)
    stays within that of a 512 x 512 map plus a few MiB (measured: +0.7 MiB)."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    growth = {}
    for size in (512, 4096):
        folder = tmp_path / str(size)
        folder.mkdir()
        _write_large_case(folder, size)
        done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(folder), str(size)], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        growth[size] = float(done.stdout.strip().splitlines()[-1])
    assert growth[4096] - growth[512] < 4.0, growth
