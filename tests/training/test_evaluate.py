"""Evaluating an ONNX model on labelled events: map with the core, score with the shared metrics."""

import pytest

from model.session import read_card
from tests.helpers.tiny_models import red_difference_model, tiny_card
from tests.helpers.training_events import write_labelled_event
from training.config import EventConfig, VectorRef
from training.evaluate import evaluate_model, event_from_folder, write_metrics_to_card
from training.simulate import simulate_event


@pytest.fixture()
def red_model(tmp_path):
    # post red above pre red means landslide; unchanged pixels give exactly 0.5, below this threshold
    return red_difference_model(str(tmp_path / "red.onnx"), card=tiny_card(threshold=0.6))


def test_a_model_that_sees_every_slide_scores_one(tmp_path, red_model):
    paths = write_labelled_event(str(tmp_path / "event"), seed=3)
    event = EventConfig("boxes", paths["pre"], paths["post"], paths["dem"], VectorRef(paths["inventory"]))
    report = evaluate_model(red_model, [event], log=lambda _: None)
    row, = report["events"]
    slide_pixels = len({(r + i, c + j) for r, c, h, w in paths["slides"] for i in range(h) for j in range(w)})
    assert (row["tp"], row["fp"], row["fn"]) == (slide_pixels, 0, 0)
    assert row["tp"] + row["tn"] == 192 * 192
    assert report["pooled"]["mcc"] == pytest.approx(1.0)
    assert row["landslides_mapped"] >= 1


def test_scores_pool_over_events_and_go_into_the_card(tmp_path, red_model):
    simulated = simulate_event(str(tmp_path / "sim"), "dry_ranges", seed=4, size_px=160, radiometry="s2_l2a")
    event = event_from_folder(simulated.folder)
    assert event.radiometry == "s2_l2a" and event.inventory.layer == "landslides"
    boxes = write_labelled_event(str(tmp_path / "boxes"), seed=5)
    report = evaluate_model(red_model, [event, EventConfig("boxes", boxes["pre"], boxes["post"], boxes["dem"],
                                                           VectorRef(boxes["inventory"]))], log=lambda _: None)
    first, second = report["events"]
    assert report["pooled"]["tp"] == first["tp"] + second["tp"]
    assert report["pooled"]["tn"] == first["tn"] + second["tn"]
    # pixels outside the common grid, under clouds or without data are not counted
    assert first["tp"] + first["fp"] + first["fn"] + first["tn"] < 160 * 160
    import dataclasses

    from model.card import write_card_to_file

    calibrated = dataclasses.replace(read_card(red_model), metrics={"mcc": 0.5, "threshold_calibration": {"chosen": 0.6}})
    write_card_to_file(red_model, calibrated)
    write_metrics_to_card(red_model, report, "two test events")
    metrics = read_card(red_model).metrics
    assert metrics["mcc"] == pytest.approx(report["pooled"]["mcc"], abs=1e-4)
    assert "two test events" in metrics["evaluated_on"]
    assert set(metrics["per_event"]) == {simulated.folder.split("/")[-1], "boxes"}
    assert metrics["training_validation"] == {"mcc": 0.5} and metrics["threshold_calibration"] == {"chosen": 0.6}


def test_a_cloud_mask_layer_of_a_geopackage_is_read_as_polygons(tmp_path, red_model):
    from tests.helpers.training_events import EPSG, GSD_M
    from tests.helpers.vector_files import write_layers

    paths = write_labelled_event(str(tmp_path / "event"), seed=3)
    r, c, h, w = paths["slides"][0]
    x0, y1 = 500000.0 + c * GSD_M, 5200000.0 - r * GSD_M
    x1, y0 = x0 + w * GSD_M, y1 - h * GSD_M
    cloud = f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"
    masks = write_layers(str(tmp_path / "masks.gpkg"), {"other": [], "clouds": [cloud]}, EPSG)
    event = EventConfig("boxes", paths["pre"], paths["post"], paths["dem"], VectorRef(paths["inventory"]),
                        cloud_mask=masks + "|layername=clouds")
    row, = evaluate_model(red_model, [event], log=lambda _: None)["events"]
    assert row["tp"] + row["fp"] + row["fn"] + row["tn"] == 192 * 192 - h * w  # the cloud's pixels are not counted
