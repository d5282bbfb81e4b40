"""benchmarks/ensemble_orientations.py: which flips each model runs, and the one-flip override it maps with."""

import importlib.util
import os

import numpy as np
import pytest

from model.orientations import FLIPS
from model.session import LandslideModel
from tests.helpers.tiny_models import conv_model, tiny_card

BENCH = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("ensemble_orientations",
                                                  os.path.join(BENCH, "ensemble_orientations.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_split_gives_every_flip_to_exactly_one_model(bench):
    combos = bench.combinations(2)
    splits = {name: c for name, c in combos.items() if name.startswith("split_")}
    assert len(splits) == 10 and len(set(map(frozenset, map(tuple, splits.values())))) == 10
    shares = []
    for combination in splits.values():
        assert len(combination) == 4
        assert sorted(flip for _, flip in combination) == [0, 1, 2, 3]
        shares.append(sum(model == 0 for model, _ in combination))
        assert sorted(model for model, _ in combination) in ([0, 0, 1, 1], [0, 0, 0, 1])
    assert sorted(shares) == [2] * 6 + [3] * 4
    assert sorted(combos["all_models_all_flips"]) == [(m, f) for m in (0, 1) for f in range(4)]
    assert combos["model_1_flips"] == [(1, f) for f in range(4)]
    assert not any(name.startswith("split_") for name in bench.combinations(3))


def test_one_flip_is_run_inside_the_block_and_the_card_rules_again_after(bench, tmp_path):
    original = LandslideModel.predict
    path = str(tmp_path / "tiny.onnx")
    conv_model(path, card=tiny_card(test_time_augmentation="flips"))
    model = LandslideModel(path, 1)
    rng = np.random.default_rng(3)
    x = {spec.role: rng.normal(size=(1, 32, 32, len(spec.channels))).astype(np.float32) for spec in model.card.inputs}
    once = {flip: bench.predict_oriented(model._run_once, x, [FLIPS[flip]]) for flip in range(4)}
    assert not np.allclose(once[0], once[3])  # the tiny network has an orientation: the test can tell flips apart
    for flip in range(4):
        with bench.single_orientation(flip):
            np.testing.assert_array_equal(LandslideModel(path, 1).predict(x), once[flip])
    assert LandslideModel.predict is original
    np.testing.assert_allclose(model.predict(x), np.mean([once[f] for f in range(4)], axis=0), atol=1e-6)
