"""Losses and metrics of the landslide network, written with ``keras.ops`` only.

Nothing here imports TensorFlow, so the functions run under any Keras 3
backend (TensorFlow, JAX, PyTorch).

Targets. ``y_true`` has shape (N, H, W, 2): channel 0 is the landslide mask
(0/1), channel 1 the validity weight (0/1; see
:func:`training.augment.sample_inputs`). Pixels with weight 0 (nodata, clouds,
outside the tile after a rotation) do not count: the prediction there may be
anything without changing a loss or a metric. ``y_pred`` holds probabilities
(N, H, W, 1).

Loss of the paper (Prakash, Manconi & Loew 2021): ``0.2 * BCE + 0.8 * FTL``,
binary cross-entropy plus the focal Tversky loss of Abraham & Khan (2019),
on the final output and on the four deep-supervision outputs, weighted
5 : 1 : 1 : 1 : 1 (:data:`OUTPUT_LOSS_WEIGHTS`, :func:`loss_weights`).

Reductions are over every valid pixel of the batch at once (one mean, one
Tversky index per batch), not per sample, so tiles with few landslide pixels
do not get an unstable index of their own. Each loss returns a scalar;
Keras' ``sample_weight`` is not supported (use the weight channel).
"""

from __future__ import annotations

from typing import Dict, Iterable

import keras
from keras import ops

from model.card import DEEP_SUPERVISION_PREFIX, OUTPUT_NAME

SERIALIZATION_PACKAGE = "landslide_resunet"
"""Keras registration package (the same as :mod:`training.network`'s)."""

EPSILON = 1e-7
"""Predictions are clipped to [EPSILON, 1 - EPSILON] before logarithms."""

BCE_WEIGHT = 0.2
TVERSKY_WEIGHT = 0.8

PREDICTION_OUTPUT = OUTPUT_NAME
PREDICTION_LOSS_WEIGHT = 5.0
DEEP_SUPERVISION_LOSS_WEIGHT = 1.0
OUTPUT_LOSS_WEIGHTS: Dict[str, float] = {
    PREDICTION_OUTPUT: PREDICTION_LOSS_WEIGHT,
    **{f"{DEEP_SUPERVISION_PREFIX}{level}": DEEP_SUPERVISION_LOSS_WEIGHT for level in (2, 3, 4, 5)},
}
"""Total loss = 5 x loss(prediction) + 1 x loss(conv_out_k) for k = 2..5
(the names of :data:`training.network.OUTPUT_NAMES`)."""


def _split(y_true, y_pred):
    """Mask, weight and prediction as float32 tensors of shape (N, H, W, 1)."""
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    truth = y_true[..., 0:1]
    weight = y_true[..., 1:2]
    return truth, weight, y_pred


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
def weighted_bce(y_true, y_pred):
    """Mean binary cross-entropy over the valid pixels of the batch.

    ``sum(w * bce) / sum(w)`` with predictions clipped to
    ``[EPSILON, 1 - EPSILON]``; 0 when no pixel is valid.
    """
    truth, weight, prob = _split(y_true, y_pred)
    prob = ops.clip(prob, EPSILON, 1.0 - EPSILON)
    bce = -(truth * ops.log(prob) + (1.0 - truth) * ops.log(1.0 - prob))
    return ops.sum(weight * bce) / ops.maximum(ops.sum(weight), EPSILON)


def tversky_counts(y_true, y_pred):
    """Soft ``(TP, FN, FP)`` over the valid pixels of the batch (scalars)."""
    truth, weight, prob = _split(y_true, y_pred)
    tp = ops.sum(weight * truth * prob)
    fn = ops.sum(weight * truth * (1.0 - prob))
    fp = ops.sum(weight * (1.0 - truth) * prob)
    return tp, fn, fp


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
def focal_tversky(y_true, y_pred, alpha: float = 0.7, beta: float = 0.3, gamma: float = 0.75, smooth: float = 1.0):
    """Focal Tversky loss ``(1 - TI) ** gamma`` over the valid pixels of the batch.

    ``TI = (TP + smooth) / (TP + alpha * FN + beta * FP + smooth)`` with soft
    counts (probabilities, not thresholded predictions). ``alpha`` weighs the
    false negatives (missed landslide pixels) and ``beta`` the false
    positives: ``alpha > beta`` favours recall. ``alpha = beta = 0.5`` gives
    the Dice loss when ``gamma = 1``.

    Gamma convention: ``gamma`` is the exponent applied to ``1 - TI``.
    Abraham & Khan (2019) write ``(1 - TI) ** (1 / gamma_AK)`` and recommend
    ``gamma_AK = 4/3``; that is ``gamma = 0.75`` here. With ``gamma < 1`` the
    loss grows faster than linearly as TI falls, so tiles that are already
    well segmented contribute less.

    ``1 - TI`` is floored at ``EPSILON`` because the gradient of ``x ** gamma``
    is infinite at 0 for ``gamma < 1``; a perfect prediction therefore gives
    ``EPSILON ** gamma`` (about 6e-6 at gamma 0.75), not exactly 0.
    """
    tp, fn, fp = tversky_counts(y_true, y_pred)
    index = (tp + smooth) / (tp + alpha * fn + beta * fp + smooth)
    return ops.power(ops.maximum(1.0 - index, EPSILON), gamma)


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class CombinedLoss(keras.losses.Loss):
    """``0.2 * weighted_bce + 0.8 * focal_tversky(alpha, beta, gamma, smooth)``.

    A :class:`keras.losses.Loss` with ``get_config``; registered, so models
    compiled with it save and load without ``custom_objects`` once this module
    is imported.
    """

    def __init__(self, alpha: float = 0.7, beta: float = 0.3, gamma: float = 0.75, smooth: float = 1.0,
                 name: str = "bce_focal_tversky", reduction: str = "sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        bce = weighted_bce(y_true, y_pred)
        ftl = focal_tversky(y_true, y_pred, self.alpha, self.beta, self.gamma, self.smooth)
        return BCE_WEIGHT * bce + TVERSKY_WEIGHT * ftl

    def get_config(self):
        config = super().get_config()
        config.update(alpha=self.alpha, beta=self.beta, gamma=self.gamma, smooth=self.smooth)
        return config


def combined_loss(alpha: float = 0.7, beta: float = 0.3, gamma: float = 0.75, smooth: float = 1.0) -> CombinedLoss:
    """The paper's loss, ``0.2 * BCE + 0.8 * focal Tversky`` (see :class:`CombinedLoss`)."""
    return CombinedLoss(alpha=alpha, beta=beta, gamma=gamma, smooth=smooth)


def output_weight(name: str) -> float:
    """Loss weight of one output: 5 for ``prediction``, 1 for ``conv_out_<k>``."""
    if name == PREDICTION_OUTPUT:
        return PREDICTION_LOSS_WEIGHT
    if name.startswith(DEEP_SUPERVISION_PREFIX):
        return DEEP_SUPERVISION_LOSS_WEIGHT
    raise ValueError(f"Unknown output '{name}': expected '{PREDICTION_OUTPUT}' or '{DEEP_SUPERVISION_PREFIX}<level>'.")


def loss_weights(output_names: Iterable[str]) -> Dict[str, float]:
    """``loss_weights`` for ``model.compile``, keyed by output name."""
    return {name: output_weight(name) for name in output_names}


def output_losses(output_names: Iterable[str], alpha: float = 0.7, beta: float = 0.3,
                  gamma: float = 0.75) -> Dict[str, CombinedLoss]:
    """``loss`` for ``model.compile``: one :class:`CombinedLoss` per output name."""
    return {name: combined_loss(alpha, beta, gamma) for name in output_names}
