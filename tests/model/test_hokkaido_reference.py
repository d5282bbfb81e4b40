"""The Hokkaido 2018 reference of fresh scars (benchmarks/hokkaido/) and its scorer.

The reference is rebuilt from the data and the committed hand edits and must equal the committed
reference.tif pixel for pixel, so it cannot drift silently; the scorer must give MCC 1 for the
reference itself and less for a shifted copy.
"""

import importlib.util
import os

import numpy as np
import pytest
from osgeo import gdal

from tests.conftest import HOKKAIDO_DIR, REPO_ROOT

BENCH = os.path.join(REPO_ROOT, "benchmarks", "hokkaido")

pytestmark = pytest.mark.skipif(not os.path.isdir(HOKKAIDO_DIR), reason=f"{HOKKAIDO_DIR} is not available")


def _load(name):
    path = os.path.join(BENCH, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"hokkaido_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build():
    return _load("build_reference")


@pytest.fixture(scope="module")
def score():
    return _load("score_hokkaido")


@pytest.fixture(scope="module")
def reference(score):
    return score.load_reference(os.path.join(BENCH, "reference.tif"), os.path.join(BENCH, "parts.gpkg"))


def test_committed_reference_is_reproduced_exactly(build):
    built = build.build_reference(HOKKAIDO_DIR, os.path.join(BENCH, "edits.json"))
    committed = gdal.Open(os.path.join(BENCH, "reference.tif"))
    np.testing.assert_array_equal(committed.ReadAsArray(), built["reference"])
    assert committed.GetGeoTransform() == pytest.approx(built["geotransform"])
    assert committed.GetRasterBand(1).GetNoDataValue() == 255
    post = gdal.Open(os.path.join(HOKKAIDO_DIR, "post_S2_B4.tif"))
    assert (committed.RasterXSize, committed.RasterYSize) == (post.RasterXSize, post.RasterYSize)
    assert set(np.unique(built["reference"])) == {0, 1, 255}


def test_reference_is_not_assessed_where_the_pre_image_has_nodata(build, reference):
    pre, _, _ = build.read_image(HOKKAIDO_DIR, "pre")
    nodata = (pre == 0).any(axis=0)
    assert nodata.any()
    assert (reference["reference"][nodata] == 255).all()


def test_every_edit_says_why(build):
    edits = build.load_edits(os.path.join(BENCH, "edits.json"))
    assert edits["edits"]
    for edit in edits["edits"]:
        assert edit["action"] in ("exclude", "add", "add_all", "not_assessed")
        assert len(edit["reason"]) > 10 and len(edit["polygon"]) >= 3


def test_parts_split_the_crop(reference):
    adapt, test = reference["regions"]["adapt_part"], reference["regions"]["test_part"]
    assert not (adapt & test).any()
    assert 0.05 <= adapt.mean() <= 0.25
    assert (reference["truth"] & adapt).sum() > 0 and (reference["truth"] & test).sum() > 0


def test_scorer_gives_mcc_1_for_the_reference_and_less_for_a_shifted_copy(score, reference):
    truth, valid, labels = reference["truth"], reference["assessed"], reference["labels"]
    regions = {n: reference["regions"][n] for n in ("whole_crop", "test_part")}
    perfect = score.score_prediction(truth.astype(np.float32), 0.5, truth, valid, labels, regions)
    for name in regions:
        at = perfect[name]["at_card_threshold"]
        assert at["mcc"] == pytest.approx(1.0) and at["fp"] == 0 and at["fn"] == 0
        assert at["object_recall"] == pytest.approx(1.0)
        assert perfect[name]["recall_at_precision_0.8"]["recall"] == pytest.approx(1.0)
    faint = score.score_prediction(truth * np.float32(0.3), 0.5, truth, valid, labels, regions)
    for name in regions:  # nothing passes the card's 0.5; the region's own best threshold (0.3) finds it all
        assert faint[name]["at_card_threshold"]["tp"] == 0
        assert faint[name]["best_mcc_threshold"] == pytest.approx(0.3)
        assert faint[name]["at_best_mcc_threshold"]["mcc"] == pytest.approx(1.0)
    shifted = np.roll(truth, 2, axis=1).astype(np.float32)  # two pixels east
    worse = score.score_prediction(shifted, 0.5, truth, valid, labels, regions)
    for name in regions:
        assert worse[name]["at_card_threshold"]["mcc"] < 0.9


def test_a_baseline_on_the_models_grid_makes_the_same_round_trip_as_a_probability(score, reference, tmp_path):
    like = reference["dataset"]
    template = str(tmp_path / "grid_10m.tif")  # a 10 m UTM 54N grid over the crop, as the pipeline makes one
    gdal.Warp(template, like, dstSRS="EPSG:32654", xRes=10, yRes=10, resampleAlg="near", outputType=gdal.GDT_Float32)
    truth = reference["truth"].astype(np.float64)
    there = score.on_grid_of(np.stack([truth, 2 * truth]), like, template)
    assert there.shape[0] == 2 and there.shape[1:] != truth.shape
    np.testing.assert_allclose(there[1], 2 * there[0], atol=1e-5)   # bands warped alike, bilinear (linear)
    back = score.back_from_grid_of(np.where(there[0] >= 0.5, there[0], 0.0), template, like)
    assert back.shape == truth.shape
    assert np.isnan(there[0]).any()     # the UTM grid's corners lie outside the crop: no value, not zero
    assert np.isfinite(back).all()      # every pixel of the crop lies inside the grid that encloses it
    kept = (back >= 0.5) & reference["truth"]
    assert 0.6 < kept.sum() / reference["truth"].sum() < 0.99   # most scar pixels survive the round trip, not all
    empty = score.back_from_grid_of(np.full(there.shape[1:], -np.inf), template, like)
    assert np.isneginf(empty).all()     # an index without values stays without values


def test_misses_are_counted_by_the_brightness_of_their_scar():
    errors = _load("where_errors_lie")
    labels = np.zeros((4, 40), np.int32)
    brightness = np.zeros((4, 40))
    for k in range(4):                       # four scars of 10 px, brightness 1000, 1100, 1200, 1300
        labels[k, :10] = k + 1
        brightness[k, :10] = 1000 + 100 * k
    detected = np.zeros((4, 40), bool)
    detected[2, :5] = True                   # half of the third scar
    detected[3, :10] = True                  # all of the brightest
    detected[0, 20:] = True                  # outside every scar: not counted
    rows = errors.misses_by_brightness(labels, detected, brightness, quarters=4)
    assert [r["regions"] for r in rows] == [1, 1, 1, 1] and [r["scar_px"] for r in rows] == [10] * 4
    assert [r["detected_share"] for r in rows] == [0.0, 0.0, 0.5, 1.0]
    assert errors.darkened_share(detected, np.ones((4, 40), bool)) == 1.0
    assert errors.darkened_share(np.zeros((4, 40), bool), detected) is None


def test_sweep_matches_direct_counts(score):
    rng = np.random.default_rng(0)
    truth = rng.random(5000) < 0.1
    values = np.round(rng.random(5000) + truth * 0.5, 2)
    curve = score.sweep(values, truth)
    for index in (0, len(curve["threshold"]) // 2, len(curve["threshold"]) - 1):
        threshold = curve["threshold"][index]
        predicted = values >= threshold
        assert curve["tp"][index] == (predicted & truth).sum()
        assert curve["fp"][index] == (predicted & ~truth).sum()
    best = score.recall_at_precision(curve, 0.8)
    predicted = values >= best["threshold"]
    assert (predicted & truth).sum() / predicted.sum() >= 0.8


def test_scorer_imports_neither_qgis_nor_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, runpy\n"
        f"sys.path.insert(0, {BENCH!r})\n"
        "import score_hokkaido\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('qgis', 'tensorflow', 'keras', 'PyQt5', 'torch'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
