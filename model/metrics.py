"""Confusion counts and the scores the paper ranks models by (MCC, F1, precision, recall).

One implementation for the trainer's validation, the model card's metrics and
the evaluation algorithm. Degenerate cases have defined answers:

- precision is 0 when nothing is predicted positive (no TP and no FP), recall
  is 0 when the truth has no positive (no TP and no FN), F1 is 0 when both
  precision and recall are 0;
- MCC is 0 whenever its denominator is 0 (a row or column of the confusion
  matrix is empty), as in scikit-learn, except that a perfect prediction of an
  all-negative (or all-positive) truth, where every score is undefined, is not
  special-cased either: it also gives MCC 0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, Optional

import numpy as np


@dataclass(frozen=True)
class Confusion:
    """Pixel counts of a binary comparison."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: "Confusion") -> "Confusion":
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def total(self) -> int:
        """All counted pixels."""
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 0 when nothing was predicted positive."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 0 when the truth has no positive."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall; 0 when both are 0."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def mcc(self) -> float:
        """Matthews correlation coefficient; 0 when undefined."""
        tp, fp, fn, tn = (float(v) for v in (self.tp, self.fp, self.fn, self.tn))
        denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return (tp * tn - fp * fn) / denominator if denominator > 0 else 0.0

    def scores(self) -> Dict[str, float]:
        """Counts and scores as a flat dict (for cards, tables and outputs)."""
        out: Dict[str, float] = dict(asdict(self))
        out.update(precision=self.precision, recall=self.recall, f1=self.f1, mcc=self.mcc)
        return out


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator > 0 else 0.0


def confusion(truth: np.ndarray, predicted: np.ndarray, valid: Optional[np.ndarray] = None) -> Confusion:
    """Counts of a predicted binary map against the truth.

    Args:
        truth: Boolean or 0/1 array.
        predicted: Boolean or 0/1 array of the same shape.
        valid: Optional boolean array; pixels where it is False are not counted.
    """
    truth = np.asarray(truth).astype(bool)
    predicted = np.asarray(predicted).astype(bool)
    if truth.shape != predicted.shape:
        raise ValueError(f"Truth {truth.shape} and prediction {predicted.shape} differ in shape.")
    if valid is not None:
        valid = np.asarray(valid).astype(bool)
        truth, predicted = truth[valid], predicted[valid]
    tp = int(np.count_nonzero(truth & predicted))
    fp = int(np.count_nonzero(~truth & predicted))
    fn = int(np.count_nonzero(truth & ~predicted))
    tn = int(truth.size - tp - fp - fn)
    return Confusion(tp, fp, fn, tn)


def threshold_counts(score: np.ndarray, truth: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``(len(thresholds), 4)`` TP, FP, FN, TN of ``score >= t`` for every threshold, in one sort."""
    score = np.asarray(score).ravel()
    truth = np.asarray(truth, dtype=bool).ravel()
    order = np.argsort(score)
    sorted_score, sorted_truth = score[order], truth[order].astype(np.int64)
    positives_above = np.concatenate([np.cumsum(sorted_truth[::-1])[::-1], [0]])
    index = np.searchsorted(sorted_score, thresholds, side="left")
    tp = positives_above[index]
    fp = (len(score) - index) - tp
    fn = int(truth.sum()) - tp
    tn = len(score) - tp - fp - fn
    return np.stack([tp, fp, fn, tn], axis=1)


def mcc_of_counts(counts: np.ndarray) -> np.ndarray:
    """MCC of TP, FP, FN, TN rows (last axis), 0 where a margin is empty, as :attr:`Confusion.mcc`."""
    tp, fp, fn, tn = (np.asarray(counts)[..., k].astype(np.float64) for k in range(4))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return np.where(denominator > 0, (tp * tn - fp * fn) / np.maximum(denominator, 1e-12), 0.0)
