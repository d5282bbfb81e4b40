"""Tests of training/losses.py against hand-computed values."""

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from training import losses  # noqa: E402


def target(mask, weight):
    """(1, H, W, 2) y_true from (H, W) mask and weight."""
    return np.stack([np.asarray(mask, np.float32), np.asarray(weight, np.float32)], axis=-1)[None]


def prob(values):
    """(1, H, W, 1) y_pred."""
    return np.asarray(values, np.float32)[None, ..., None]


# A 2x2 tile: landslide, background, an invalid landslide, background.
Y_TRUE = target([[1, 0], [1, 0]], [[1, 1], [0, 1]])
Y_PRED = prob([[0.8, 0.3], [0.1, 0.6]])
# By hand over the three valid pixels: TP = 0.8, FN = 1 - 0.8, FP = 0.3 + 0.6.
TP, FN, FP = 0.8, 0.2, 0.9
BCE = -(math.log(0.8) + math.log(1 - 0.3) + math.log(1 - 0.6)) / 3


def value(tensor):
    return float(keras.ops.convert_to_numpy(tensor))


def test_weighted_bce_by_hand():
    assert value(losses.weighted_bce(Y_TRUE, Y_PRED)) == pytest.approx(BCE, rel=1e-6)


def test_weighted_bce_clips_certain_mistakes():
    y_true = target([[1, 0]], [[1, 1]])
    y_pred = prob([[0.0, 1.0]])  # both certain and wrong
    low = np.float32(1e-7)
    high = np.float32(1.0) - low  # float32: 1 - 1.19e-7
    expected = -(math.log(low) + math.log(np.float32(1.0) - high)) / 2
    assert value(losses.weighted_bce(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)


def test_weighted_bce_without_valid_pixels_is_zero():
    assert value(losses.weighted_bce(target([[1, 0]], [[0, 0]]), prob([[0.2, 0.9]]))) == 0.0


def test_tversky_counts_by_hand():
    tp, fn, fp = (value(v) for v in losses.tversky_counts(Y_TRUE, Y_PRED))
    assert (tp, fn, fp) == pytest.approx((TP, FN, FP), rel=1e-6)


@pytest.mark.parametrize(
    "alpha, beta, gamma, smooth",
    [(0.7, 0.3, 0.75, 1.0), (0.5, 0.5, 1.0, 1.0), (0.3, 0.7, 0.5, 0.0), (0.9, 0.1, 2.0, 0.5)],
)
def test_focal_tversky_by_hand(alpha, beta, gamma, smooth):
    index = (TP + smooth) / (TP + alpha * FN + beta * FP + smooth)
    expected = (1 - index) ** gamma
    found = value(losses.focal_tversky(Y_TRUE, Y_PRED, alpha=alpha, beta=beta, gamma=gamma, smooth=smooth))
    assert found == pytest.approx(expected, rel=1e-5)


def test_focal_tversky_defaults_are_the_papers():
    index = (TP + 1) / (TP + 0.7 * FN + 0.3 * FP + 1)
    assert value(losses.focal_tversky(Y_TRUE, Y_PRED)) == pytest.approx((1 - index) ** 0.75, rel=1e-5)


def test_alpha_weighs_false_negatives():
    y_true = target([[1, 1, 0, 0]], [[1, 1, 1, 1]])
    misses = prob([[0.0, 0.0, 0.0, 0.0]])  # FN = 2, no FP
    false_alarms = prob([[1.0, 1.0, 1.0, 1.0]])  # TP = 2, FP = 2, no FN
    ftl = lambda p: value(losses.focal_tversky(y_true, p, alpha=0.7, beta=0.3, gamma=1.0, smooth=0.0))  # noqa: E731
    assert ftl(misses) == pytest.approx(1.0, abs=1e-6)  # TI = 0 / (0 + 0.7 * 2)
    assert ftl(false_alarms) == pytest.approx(1 - 2 / (2 + 0.3 * 2), rel=1e-6)


def test_perfect_prediction_gives_almost_no_loss():
    y_true = target([[1, 0], [0, 1]], [[1, 1], [1, 1]])
    y_pred = prob([[1.0, 0.0], [0.0, 1.0]])
    assert 0.0 <= value(losses.focal_tversky(y_true, y_pred)) < 1e-5
    assert 0.0 <= value(losses.weighted_bce(y_true, y_pred)) < 1e-6
    assert value(losses.combined_loss()(y_true, y_pred)) < 1e-5
    wrong = prob([[0.0, 1.0], [1.0, 0.0]])
    assert value(losses.focal_tversky(y_true, wrong)) == pytest.approx((1 - 1 / 3) ** 0.75, rel=1e-5)


def test_focal_tversky_gradient_is_finite_at_a_perfect_prediction():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("gradient check written for the TensorFlow backend")
    tf = pytest.importorskip("tensorflow")
    y_true = tf.constant(target([[1, 0], [0, 1]], [[1, 1], [1, 1]]))
    y_pred = tf.Variable(prob([[1.0, 0.0], [0.0, 1.0]]))
    with tf.GradientTape() as tape:
        loss = losses.combined_loss()(y_true, y_pred)
    gradient = tape.gradient(loss, y_pred).numpy()
    assert np.all(np.isfinite(gradient))


def random_batch(seed, shape=(3, 8, 8)):
    rng = np.random.default_rng(seed)
    mask = (rng.random(shape) < 0.3).astype(np.float32)
    weight = (rng.random(shape) < 0.7).astype(np.float32)
    y_true = np.stack([mask, weight], axis=-1)
    y_pred = rng.uniform(0.01, 0.99, shape + (1,)).astype(np.float32)
    return y_true, y_pred


@pytest.mark.parametrize("name", ["weighted_bce", "focal_tversky", "combined"])
def test_invalid_pixels_do_not_change_the_loss(name):
    fn = losses.combined_loss() if name == "combined" else getattr(losses, name)
    y_true, y_pred = random_batch(0)
    invalid = y_true[..., 1] == 0
    assert invalid.any()
    changed_pred = y_pred.copy()
    changed_pred[invalid] = np.random.default_rng(1).uniform(0, 1, (invalid.sum(), 1))
    changed_true = y_true.copy()
    changed_true[..., 0][invalid] = 1 - changed_true[..., 0][invalid]
    reference = value(fn(y_true, y_pred))
    assert value(fn(y_true, changed_pred)) == pytest.approx(reference, rel=1e-6)
    assert value(fn(changed_true, changed_pred)) == pytest.approx(reference, rel=1e-6)
    # ... while a change at a valid pixel does change it.
    valid_changed = y_pred.copy()
    valid_changed[~invalid] = 1 - valid_changed[~invalid]
    assert value(fn(y_true, valid_changed)) != pytest.approx(reference, rel=1e-3)


def test_losses_equal_numpy_over_the_valid_pixels():
    y_true, y_pred = random_batch(2)
    keep = y_true[..., 1] == 1
    t, p = y_true[..., 0][keep], y_pred[..., 0][keep]
    bce = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    tp, fn, fp = np.sum(t * p), np.sum(t * (1 - p)), np.sum((1 - t) * p)
    ftl = (1 - (tp + 1) / (tp + 0.7 * fn + 0.3 * fp + 1)) ** 0.75
    assert value(losses.weighted_bce(y_true, y_pred)) == pytest.approx(bce, rel=1e-5)
    assert value(losses.focal_tversky(y_true, y_pred)) == pytest.approx(ftl, rel=1e-5)


def test_combined_is_the_weighted_sum():
    y_true, y_pred = random_batch(3)
    loss = losses.combined_loss(alpha=0.6, beta=0.4, gamma=0.9)
    bce = value(losses.weighted_bce(y_true, y_pred))
    ftl = value(losses.focal_tversky(y_true, y_pred, alpha=0.6, beta=0.4, gamma=0.9))
    assert value(loss(y_true, y_pred)) == pytest.approx(0.2 * bce + 0.8 * ftl, rel=1e-6)
    assert losses.BCE_WEIGHT == 0.2 and losses.TVERSKY_WEIGHT == 0.8


def test_combined_loss_survives_serialization():
    loss = losses.combined_loss(alpha=0.6, beta=0.4, gamma=0.9)
    config = keras.losses.serialize(loss)
    restored = keras.losses.deserialize(config)
    assert isinstance(restored, losses.CombinedLoss)
    assert (restored.alpha, restored.beta, restored.gamma, restored.smooth) == (0.6, 0.4, 0.9, 1.0)
    y_true, y_pred = random_batch(4)
    assert value(restored(y_true, y_pred)) == pytest.approx(value(loss(y_true, y_pred)), rel=1e-7)


def test_functions_are_registered():
    assert keras.saving.get_registered_name(losses.weighted_bce) == "landslide_resunet>weighted_bce"
    assert keras.saving.get_registered_object("landslide_resunet>focal_tversky") is losses.focal_tversky
    assert keras.losses.deserialize(keras.losses.serialize(losses.weighted_bce)) is losses.weighted_bce


def two_output_model():
    inputs = keras.Input((8, 8, 1), name="x")
    a = keras.layers.Conv2D(1, 1, activation="sigmoid", name="prediction")(inputs)
    b = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="conv_out_2")(inputs)
    return keras.Model(inputs, [a, b])


def test_compiled_model_weights_outputs_and_reloads(tmp_path):
    model = two_output_model()
    names = list(model.output_names)
    model.compile(
        optimizer="sgd", loss=losses.output_losses(names, 0.6, 0.4, 0.9), loss_weights=losses.loss_weights(names)
    )
    x = np.random.default_rng(5).normal(size=(2, 8, 8, 1)).astype(np.float32)
    y = np.stack([(x[..., 0] > 0.3), np.ones_like(x[..., 0])], axis=-1).astype(np.float32)
    scores = model.evaluate(x, {"prediction": y, "conv_out_2": y}, return_dict=True, verbose=0)
    prediction, aux = model.predict(x, verbose=0)
    loss = losses.combined_loss(0.6, 0.4, 0.9)
    expected = 5.0 * value(loss(y, prediction)) + 1.0 * value(loss(y, aux))
    assert value(loss(y, prediction)) != pytest.approx(value(loss(y, aux)), rel=1e-3)
    assert scores["loss"] == pytest.approx(expected, rel=1e-5)

    path = str(tmp_path / "tiny.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert isinstance(reloaded.loss["prediction"], losses.CombinedLoss)
    assert reloaded.loss["conv_out_2"].get_config()["alpha"] == 0.6
    again = reloaded.evaluate(x, {"prediction": y, "conv_out_2": y}, return_dict=True, verbose=0)
    assert again["loss"] == pytest.approx(scores["loss"], rel=1e-6)


def test_loss_weights_of_the_network_outputs():
    network = pytest.importorskip("training.network")
    weights = losses.loss_weights(network.OUTPUT_NAMES)
    assert weights == {"prediction": 5.0, "conv_out_2": 1.0, "conv_out_3": 1.0, "conv_out_4": 1.0, "conv_out_5": 1.0}
    assert losses.OUTPUT_LOSS_WEIGHTS == weights
    assert list(weights) == list(network.OUTPUT_NAMES)
    with pytest.raises(ValueError, match="logits"):
        losses.loss_weights(["logits"])
