"""Metrics against hand-computed confusion matrices, degenerate cases included."""

import math

import numpy as np
import pytest

from model.metrics import Confusion, confusion


def test_counts_from_maps_with_a_valid_mask():
    truth = np.array([[1, 1, 0, 0], [1, 0, 0, 1]])
    predicted = np.array([[1, 0, 1, 0], [1, 0, 1, 1]])
    valid = np.array([[1, 1, 1, 1], [1, 1, 0, 1]], bool)
    assert confusion(truth, predicted) == Confusion(tp=3, fp=2, fn=1, tn=2)
    assert confusion(truth, predicted, valid) == Confusion(tp=3, fp=1, fn=1, tn=2)


def test_scores_of_a_hand_computed_matrix():
    c = Confusion(tp=30, fp=10, fn=20, tn=940)
    assert c.precision == pytest.approx(0.75)
    assert c.recall == pytest.approx(0.6)
    assert c.f1 == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    expected_mcc = (30 * 940 - 10 * 20) / math.sqrt(40 * 50 * 950 * 960)
    assert c.mcc == pytest.approx(expected_mcc)
    assert c.total == 1000


@pytest.mark.parametrize("counts, precision, recall, f1, mcc", [
    (Confusion(0, 0, 0, 100), 0.0, 0.0, 0.0, 0.0),   # no positives anywhere
    (Confusion(0, 5, 0, 95), 0.0, 0.0, 0.0, 0.0),    # truth has none, false alarms
    (Confusion(0, 0, 7, 93), 0.0, 0.0, 0.0, 0.0),    # nothing predicted
    (Confusion(10, 0, 0, 0), 1.0, 1.0, 1.0, 0.0),    # all positive, all found: MCC undefined -> 0
    (Confusion(10, 0, 0, 90), 1.0, 1.0, 1.0, 1.0),   # perfect
    (Confusion(0, 10, 90, 0), 0.0, 0.0, 0.0, -1.0),  # perfectly wrong
])
def test_degenerate_cases_have_defined_answers(counts, precision, recall, f1, mcc):
    assert (counts.precision, counts.recall, counts.f1) == pytest.approx((precision, recall, f1))
    assert counts.mcc == pytest.approx(mcc)


def test_confusions_add_up():
    assert Confusion(1, 2, 3, 4) + Confusion(10, 20, 30, 40) == Confusion(11, 22, 33, 44)
    assert Confusion(1, 2, 3, 4).scores()["tp"] == 1


def test_shapes_must_match():
    with pytest.raises(ValueError, match="differ in shape"):
        confusion(np.zeros((2, 2)), np.zeros((2, 3)))


def test_threshold_counts_equal_one_confusion_per_threshold():
    from model.metrics import mcc_of_counts, threshold_counts

    rng = np.random.default_rng(5)
    score = rng.random(2000)
    truth = rng.random(2000) < score ** 2
    thresholds = np.array([0.0, 0.25, 0.5, 0.75, 0.999, 1.5])
    counts = threshold_counts(score, truth, thresholds)
    for row, t in zip(counts, thresholds):
        c = confusion(truth, score >= t)
        assert tuple(row) == (c.tp, c.fp, c.fn, c.tn)
    np.testing.assert_allclose(mcc_of_counts(counts), [confusion(truth, score >= t).mcc for t in thresholds])
