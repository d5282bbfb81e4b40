"""Test-time augmentation (model/orientations.py): the probability averaged over a window's flips."""

import json

import numpy as np
import pytest

from model.card import TTA_DIHEDRAL, TTA_FLIPS, TTA_MODES, TTA_NONE, card_from_json
from model.errors import ModelCardError
from model.orientations import FLIPS, passes, predict_averaged, predict_oriented
from model.session import LandslideModel
from tests.helpers.tiny_models import conv_model, tiny_card


def _inputs(rows, cols, seed=0):
    rng = np.random.default_rng(seed)
    return {"pre_image": rng.normal(size=(2, rows, cols, 3)).astype(np.float32),
            "post_image": rng.normal(size=(2, rows, cols, 3)).astype(np.float32),
            "terrain": rng.normal(size=(2, rows, cols, 2)).astype(np.float32)}


def _pixelwise(x):
    """A per-pixel function: the same under any flip, so averaging must give it back unchanged."""
    return np.tanh(x["post_image"][..., 0] - 0.5 * x["pre_image"][..., 2] + x["terrain"][..., 1])


@pytest.mark.parametrize("mode", TTA_MODES)
def test_each_copy_is_brought_back_to_the_window_orientation(mode):
    x = _inputs(32, 64)  # not square: transposed copies have the other shape
    np.testing.assert_allclose(predict_averaged(_pixelwise, x, mode), _pixelwise(x), atol=1e-6)


def test_an_orientation_habit_is_averaged_out():
    def leans_east(x):  # ignores the image, grows eastwards
        n, rows, cols, _ = x["pre_image"].shape
        return np.broadcast_to(np.arange(cols, dtype=np.float32), (n, rows, cols))

    x = _inputs(16, 16)
    assert np.ptp(predict_averaged(leans_east, x, TTA_NONE)) == 15
    for mode in (TTA_FLIPS, TTA_DIHEDRAL):
        np.testing.assert_allclose(predict_averaged(leans_east, x, mode), 7.5)


def test_cost_and_unknown_modes():
    assert [passes(mode) for mode in TTA_MODES] == [1, 4, 8]
    with pytest.raises(ValueError, match="unknown test-time augmentation 'rot90'"):
        predict_averaged(_pixelwise, _inputs(8, 8), "rot90")


def test_cards_carry_it_and_older_cards_run_without_it():
    data = json.loads(tiny_card(test_time_augmentation=TTA_FLIPS).to_json())
    assert card_from_json(json.dumps(data)).test_time_augmentation == TTA_FLIPS
    del data["test_time_augmentation"]
    assert card_from_json(json.dumps(data)).test_time_augmentation == TTA_NONE
    data["test_time_augmentation"] = "rot90"
    with pytest.raises(ModelCardError, match="test_time_augmentation must be one of none, flips, dihedral"):
        card_from_json(json.dumps(data))
    data["test_time_augmentation"] = 4
    with pytest.raises(ModelCardError, match="the field 'test_time_augmentation' must be text, not 4"):
        card_from_json(json.dumps(data))


def test_the_plugin_session_averages_as_the_card_says(tmp_path):
    """A random convolution has no symmetry; with ``flips`` in its card the map flips with its input."""
    x = _inputs(64, 96, seed=3)
    flipped = {k: np.ascontiguousarray(v[:, ::-1, ::-1]) for k, v in x.items()}
    plain = LandslideModel(conv_model(str(tmp_path / "plain.onnx")))
    averaged = LandslideModel(conv_model(str(tmp_path / "flips.onnx"),
                                         card=tiny_card(test_time_augmentation=TTA_FLIPS)))
    assert not np.allclose(plain.predict(flipped), plain.predict(x)[:, ::-1, ::-1], atol=1e-3)
    np.testing.assert_allclose(averaged.predict(flipped), averaged.predict(x)[:, ::-1, ::-1], atol=1e-5)
    assert not np.allclose(averaged.predict(x), plain.predict(x), atol=1e-3)


def test_some_of_the_flips_are_averaged_and_brought_back():
    def leans_east(x):
        n, rows, cols, _ = x["pre_image"].shape
        return np.broadcast_to(np.arange(cols, dtype=np.float32), (n, rows, cols))

    x = _inputs(16, 16)
    np.testing.assert_allclose(predict_oriented(_pixelwise, x, FLIPS[1:3]), _pixelwise(x), atol=1e-6)
    as_is, up_down, left_right, both = FLIPS
    np.testing.assert_allclose(predict_oriented(leans_east, x, [as_is, up_down])[0, 0], np.arange(16))  # no mirror
    np.testing.assert_allclose(predict_oriented(leans_east, x, [as_is, left_right]), 7.5)  # one mirrored copy
    np.testing.assert_allclose(predict_oriented(leans_east, x, [both])[0, 0], np.arange(16)[::-1])
    np.testing.assert_allclose(predict_oriented(leans_east, x, FLIPS), predict_averaged(leans_east, x, TTA_FLIPS))
    with pytest.raises(ValueError, match="at least one transform"):
        predict_oriented(leans_east, x, [])
