"""training.adapt and training.onnx_weights: a carded ONNX model rebuilt in Keras, fine-tuned on an analyst's
mapping through ``python -m training adapt``, and stopped by SIGTERM without writing anything."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from osgeo import gdal

from model.errors import ModelCardError
from model.session import read_card
from tests.conftest import REPO_ROOT
from tests.helpers.scenes import make_event_scene, write_polygons
from tests.helpers.tiny_models import red_difference_model

DEFAULT_MODEL = os.path.join(REPO_ROOT, "model", "default_model.onnx")
ROWS = COLS = 300
AREA_COLS = 160
SLIDES = [(r, c, 6 + (r + c) % 7, 5 + (r * 3 + c) % 9) for r in range(12, 290, 37) for c in range(10, 290, 41)]


def test_the_default_model_is_rebuilt_in_keras_with_the_same_outputs():
    from training.export import random_inputs
    from training.network import prediction_model
    from training.onnx_weights import rebuild_network

    import onnxruntime as ort

    network, width, worst = rebuild_network(DEFAULT_MODEL, read_card(DEFAULT_MODEL))
    assert width == read_card(DEFAULT_MODEL).provenance["width"]
    assert worst < 1e-3
    feed = random_inputs(network, 128, batch=1, seed=7)
    expected = ort.InferenceSession(DEFAULT_MODEL, providers=["CPUExecutionProvider"]).run(["prediction"], feed)[0]
    got = np.asarray(prediction_model(network)(feed, training=False))
    assert np.abs(got - expected).max() < 1e-3
    def layers_of(model):  # an ensemble's members are sub-models
        for layer in model.layers:
            yield from layers_of(layer) if hasattr(layer, "layers") else (layer,)

    frozen = [layer for layer in layers_of(network) if type(layer).__name__ == "BatchNormalization"]
    assert frozen and not any(layer.trainable for layer in frozen)


def test_a_model_that_is_no_resunet_of_this_project_is_refused(tmp_path):
    from training.onnx_weights import RebuildError, rebuild_network

    model = red_difference_model(str(tmp_path / "red.onnx"))
    with pytest.raises(RebuildError, match="cannot rebuild") as caught:
        rebuild_network(model, read_card(model))
    assert isinstance(caught.value, ModelCardError)


def test_adapted_weights_move_back_towards_the_base_by_the_share():
    from training.adapt import interpolated_weights

    adapted, base = [np.full((2, 2), 4.0), np.array([1.0])], [np.zeros((2, 2)), np.array([3.0])]
    halfway = interpolated_weights(adapted, base, 0.5)
    np.testing.assert_allclose(halfway[0], 2.0)
    np.testing.assert_allclose(halfway[1], 2.0)
    np.testing.assert_allclose(interpolated_weights(adapted, base, 0.0)[0], 4.0)
    np.testing.assert_allclose(interpolated_weights(adapted, base, 1.0)[1], 3.0)
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\], not 1.5"):
        interpolated_weights(adapted, base, 1.5)


def _box(scene, row, col, height, width):
    x0, dx, _, y0, _, dy = scene.geotransform
    x_a, x_b, y_a, y_b = x0 + col * dx, x0 + (col + width) * dx, y0 + row * dy, y0 + (row + height) * dy
    return f"POLYGON(({x_a} {y_b},{x_b} {y_b},{x_b} {y_a},{x_a} {y_a},{x_a} {y_b}))"


@pytest.fixture(scope="module")
def mapped_event(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("adapt_cli"))
    scene = make_event_scene(folder, rows=ROWS, cols=COLS, slides=SLIDES, seed=3)
    landslides = write_polygons(os.path.join(folder, "landslides.gpkg"),
                                [_box(scene, *s) for s in SLIDES if s[1] + s[3] <= AREA_COLS], scene.epsg)
    area = write_polygons(os.path.join(folder, "area.gpkg"), [_box(scene, 0, 0, ROWS, AREA_COLS)], scene.epsg)
    return scene, landslides, area


def _command(mapped_event, output, minutes, *extra):
    scene, landslides, area = mapped_event
    return [sys.executable, "-m", "training", "adapt", "--pre", scene.pre, "--post", scene.post, "--dem", scene.dem,
            "--landslides", landslides, "--area", area, "--output", output, "--minutes", str(minutes), *extra]


def test_the_adapted_threshold_is_the_middle_of_those_near_the_best_mcc():
    from training.adapt import THRESHOLDS, calibrated_threshold_index

    counts = np.tile([5, 5, 5, 5], (len(THRESHOLDS), 1))  # MCC 0
    counts[20] = [10, 0, 0, 10]  # MCC 1: a lone spike at the low end
    counts[40:51] = [19, 1, 1, 19]  # MCC 0.9 from 40 to 50
    assert int(np.argmax(counts[:, 0] == 10)) == 20
    assert calibrated_threshold_index(counts, 0.15) == 45  # the spike and the plateau: the middle of twelve, upper
    assert calibrated_threshold_index(counts, 0.05) == 20  # only the spike is within 0.05 of the best
    counts[20] = [5, 5, 5, 5]
    assert calibrated_threshold_index(counts, 0.0) == 45  # eleven thresholds share the best: the middle one
    assert calibrated_threshold_index(np.tile([5, 5, 5, 5], (len(THRESHOLDS), 1))) == len(THRESHOLDS) // 2


def test_adapt_on_the_command_line_learns_the_event_and_records_it_in_the_card(mapped_event, tmp_path):
    output = str(tmp_path / "adapted.onnx")
    result_path = str(tmp_path / "result.json")
    checks = tmp_path / "checks"
    # 2.5 minutes: the default model (two networks) spends about 85 s starting (reading, rebuilding, tracing its
    # training step) and 30 s exporting on the 2 cores here, and the budget must cover both to be held
    done = subprocess.run(_command(mapped_event, output, 2.5, "--result-json", result_path, "--seed", "1",
                                   "--save-checks", str(checks)),
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # every validation check's weights saved, one file per "step N: validation MCC" line of the log
    checked = sorted(int(line.split()[1].rstrip(":")) for line in done.stdout.splitlines()
                     if line.startswith("step ") and "validation MCC" in line)
    assert checked and sorted(int(f[5:-4]) for f in os.listdir(checks)) == checked
    # each check scores the weights as they would be shipped, halfway back, beside the weights as trained
    assert all(" as trained, " in line and " moved 50% back " in line for line in done.stdout.splitlines()
               if line.startswith("step ") and "validation MCC" in line), done.stdout[-2000:]
    from training.onnx_weights import rebuild_network

    shapes = [w.shape for w in rebuild_network(DEFAULT_MODEL, read_card(DEFAULT_MODEL))[0].get_weights()]
    with np.load(checks / f"step_{checked[-1]}.npz") as saved:
        assert [saved[f"arr_{i}"].shape for i in range(len(saved.files))] == shapes
    result = json.load(open(result_path, encoding="utf-8"))
    card = read_card(output)
    assert card.name == read_card(DEFAULT_MODEL).name + "-adapted"
    assert card.threshold == result["threshold"]
    assert card.metrics["mcc"] == result["scores"]["mcc"]
    assert card.provenance["adapted_from"]["file"] == "default_model.onnx"
    assert card.provenance["adapted_on"]["landslides"] == len([s for s in SLIDES if s[1] + s[3] <= AREA_COLS])
    assert card.provenance["adaptation"]["steps"] == result["steps"] > 0
    assert card.provenance["adaptation"]["base_weight_share"] == 0.5  # halfway back to the base weights
    # trained away from the validation blocks: less than the area minus its validation fifth
    assert 0 < card.provenance["adaptation"]["training_km2"] < 0.8 * card.provenance["adapted_on"]["area_km2"]
    assert result["seconds"] <= 150 + 20  # the budget holds, start to written model (give or take the export)
    # It learnt the event: of what the base model gets wrong on these bright red scars (at the base's best
    # threshold), at least half is put right (the default model already reaches 0.93 here).
    base_best = result["base_scores"]["best_threshold_mcc"]
    assert result["scores"]["mcc"] > base_best + 0.5 * (1.0 - base_best), result
    assert result["scores"]["mcc"] > 0.5, result


def test_the_budget_counts_from_the_start_it_is_given(mapped_event, tmp_path):
    # The Processing algorithm passes its own start, so the time its checks took is spent from the budget too.
    from training.adapt import EXPORT_RESERVE_S, MIN_STEPS

    result_path = str(tmp_path / "result.json")
    begun = time.time() - 40.0  # 40 s of a 1-minute budget already spent: no time left to train beyond the minimum
    done = subprocess.run(_command(mapped_event, str(tmp_path / "adapted.onnx"), 1.0, "--result-json", result_path,
                                   "--started-at", f"{begun:.3f}"),
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert 60 - 40 < EXPORT_RESERVE_S
    result = json.load(open(result_path, encoding="utf-8"))
    assert result["steps"] == MIN_STEPS, result
    assert result["seconds"] >= 40.0, result  # counted from the start given, not from the trainer's own


def test_sigterm_stops_the_trainer_without_writing_the_model(mapped_event, tmp_path):
    output = str(tmp_path / "adapted.onnx")
    process = subprocess.Popen(_command(mapped_event, output, 5.0, "--progress"), cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if line.startswith("PROGRESS"):
            break
    start = time.time()
    process.send_signal(signal.SIGTERM)
    rest = process.stdout.read()
    status = process.wait(timeout=60)
    assert time.time() - start < 10
    assert status != 0 and "cancelled" in rest.lower(), rest[-1000:]
    assert os.listdir(str(tmp_path)) == []
