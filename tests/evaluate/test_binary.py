"""Task metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shopformer.evaluate.binary import (
    base_rate,
    bootstrap_ci,
    brier,
    classification_metrics,
    ece,
    logloss,
    pr_auc,
    reliability_plot,
    roc_auc,
)

LABELS = np.array([0, 0, 1, 1])
SCORES = np.array([0.1, 0.4, 0.35, 0.8])


def test_binary_metrics_by_hand():
    # Pairs (pos, neg): (0.35 > 0.1), (0.35 < 0.4), (0.8 > both): 3 of 4.
    assert roc_auc(LABELS, SCORES) == 0.75
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5  # a tie counts one half
    # Ranked: 0.8 (+) P=1, 0.4 (-), 0.35 (+) P=2/3 -> AP = (1 + 2/3) / 2.
    assert pr_auc(LABELS, SCORES) == pytest.approx((1 + 2 / 3) / 2)
    expected = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    assert logloss(LABELS, SCORES) == pytest.approx(expected)
    assert brier(LABELS, SCORES) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert base_rate(LABELS) == 0.5


def test_ece_by_hand():
    # Bins of width 1/15: 0.1, 0.35 and 0.4 and 0.8 each in a bin of its own.
    expected = (abs(0.1 - 0) + abs(0.35 - 1) + abs(0.4 - 0) + abs(0.8 - 1)) / 4
    assert ece(LABELS, SCORES) == pytest.approx(expected)
    assert ece(np.array([1, 0] * 50), np.full(100, 0.5)) == 0
    assert ece(np.array([1, 0, 0, 0]), np.array([0.2, 0.21, 0.22, 0.23])) == pytest.approx(abs(0.215 - 0.25))


def test_multiclass_metrics():
    labels = np.array([0, 1, 2, 2])
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.1, 0.4]])
    assert roc_auc(labels, probs) == pytest.approx(np.mean([1.0, 1.0, 1.0]))
    assert logloss(labels, probs) == pytest.approx(-np.mean(np.log([0.7, 0.8, 0.6, 0.4])))
    assert brier(labels, probs) == pytest.approx(np.mean([0.14, 0.06, 0.24, 0.62]))
    # Top label: 0.7 right, 0.8 right, 0.6 right, 0.5 wrong; bins 10, 12, 9, 7.
    assert ece(labels, probs) == pytest.approx((0.3 + 0.2 + 0.4 + 0.5) / 4)
    assert base_rate(labels, 3) == [0.25, 0.25, 0.5]


def test_bootstrap_interval_contains_the_estimate():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000)
    scores = labels * 0.5 + rng.random(2000)
    metrics = classification_metrics(labels, scores)
    low, high = metrics["auc_ci"]
    assert low < metrics["auc"] < high and high - low < 0.06
    assert bootstrap_ci(np.zeros(10, int), np.ones(10)) != bootstrap_ci(labels, scores)


def test_reliability_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(1)
    probs = rng.random(500)
    path = reliability_plot({"model": (rng.random(500) < probs, probs)}, tmp_path / "plot.png", "intent")
    assert path.read_bytes()[:4] == b"\x89PNG"
