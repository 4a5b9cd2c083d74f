"""Decision metrics against scikit-learn's, and the balanced ones against sample-weighted scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from shopformer.evaluate.decisions import (
    accuracy,
    balanced_accuracy,
    balanced_f1,
    decision_metrics,
    f1_macro,
    f1_positive,
    f1_weighted,
)

RNG = np.random.default_rng(0)
LABELS = (RNG.random(500) < 0.2).astype(int)
PROBS = np.clip(0.25 * LABELS + RNG.random(500) * 0.6, 0, 1)


@pytest.mark.parametrize("threshold", [0.2, 0.5])
def test_natural_metrics_match_scikit_learn(threshold):
    decided = (PROBS > threshold).astype(int)
    assert accuracy(LABELS, PROBS, threshold) == pytest.approx(accuracy_score(LABELS, decided))
    assert f1_positive(LABELS, PROBS, threshold) == pytest.approx(f1_score(LABELS, decided))
    assert f1_macro(LABELS, PROBS, threshold) == pytest.approx(f1_score(LABELS, decided, average="macro"))
    assert f1_weighted(LABELS, PROBS, threshold) == pytest.approx(f1_score(LABELS, decided, average="weighted"))


def test_balanced_metrics_weigh_both_classes_the_same():
    decided = (PROBS > 0.3).astype(int)
    weights = np.where(LABELS == 1, 1 / LABELS.sum(), 1 / (1 - LABELS).sum())
    assert balanced_accuracy(LABELS, PROBS, 0.3) == pytest.approx(balanced_accuracy_score(LABELS, decided))
    assert balanced_f1(LABELS, PROBS, 0.3) == pytest.approx(f1_score(LABELS, decided, sample_weight=weights))


def test_a_hand_computed_case():
    labels, probs = np.array([1, 1, 0, 0, 0, 0]), np.array([0.9, 0.2, 0.6, 0.1, 0.1, 0.1])
    # TP 1, FN 1, FP 1, TN 3: F1+ = 2/4, F1- = 6/8; balanced: TPR 1/2, FPR 1/4 -> 1 / (1 + 3/4).
    assert accuracy(labels, probs) == pytest.approx(4 / 6)
    assert f1_positive(labels, probs) == pytest.approx(0.5)
    assert f1_macro(labels, probs) == pytest.approx(0.625)
    assert f1_weighted(labels, probs) == pytest.approx(2 / 6 * 0.5 + 4 / 6 * 0.75)
    assert balanced_f1(labels, probs) == pytest.approx(1 / 1.75)


def test_decision_metrics_have_intervals_around_them():
    metrics = decision_metrics(LABELS, PROBS, threshold=0.5, balanced_threshold=0.3, resamples=50)
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy(LABELS, PROBS, 0.3), abs=1e-4)
    for name in ("accuracy", "f1_positive", "f1_macro", "f1_weighted", "balanced_accuracy", "balanced_f1"):
        low, high = metrics[f"{name}_ci"]
        assert low <= metrics[name] <= high, name
