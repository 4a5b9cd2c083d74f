"""Metrics of yes/no decisions made by thresholding P(label = 1): accuracy and F1, as papers report them.

A probability above `threshold` is a "yes". F1 comes in the three averages papers use without always
saying which: of the positive class, macro (mean of both classes' F1) and weighted (by class size).
The balanced versions weigh the test examples so that both classes count the same, as on an
evaluation set resampled to 50/50: balanced accuracy is the mean of the two recalls, balanced F1 the
positive class's F1 with precision TPR / (TPR + FPR).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from shopformer.evaluate.binary import bootstrap_ci

__all__ = ["accuracy", "balanced_accuracy", "balanced_f1", "decision_metrics", "f1_macro", "f1_positive", "f1_weighted"]


def _counts(labels: np.ndarray, probs: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """True positives, false positives, false negatives, true negatives."""
    labels, yes = np.asarray(labels).astype(bool), np.asarray(probs) > threshold
    return (int((yes & labels).sum()), int((yes & ~labels).sum()), int((~yes & labels).sum()),
            int((~yes & ~labels).sum()))


def _f1(hits: int, false_alarms: int, misses: int) -> float:
    denominator = 2 * hits + false_alarms + misses
    return 2 * hits / denominator if denominator else 0.0


def accuracy(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> float:
    """Share of examples decided right."""
    tp, fp, fn, tn = _counts(labels, probs, threshold)
    return (tp + tn) / (tp + fp + fn + tn)


def f1_positive(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of the positive class: 2 TP / (2 TP + FP + FN)."""
    tp, fp, fn, _ = _counts(labels, probs, threshold)
    return _f1(tp, fp, fn)


def _both_f1(labels: np.ndarray, probs: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """(F1 of the positive class, F1 of the negative class, share of positives)."""
    tp, fp, fn, tn = _counts(labels, probs, threshold)
    return _f1(tp, fp, fn), _f1(tn, fn, fp), (tp + fn) / (tp + fp + fn + tn)


def f1_macro(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> float:
    """Mean of the two classes' F1."""
    positive, negative, _ = _both_f1(labels, probs, threshold)
    return (positive + negative) / 2


def f1_weighted(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> float:
    """The two classes' F1 weighted by their shares of the examples."""
    positive, negative, share = _both_f1(labels, probs, threshold)
    return share * positive + (1 - share) * negative


def _rates(labels: np.ndarray, probs: np.ndarray, threshold: float) -> tuple[float, float]:
    """(true positive rate, false positive rate); nan where a class is absent."""
    tp, fp, fn, tn = _counts(labels, probs, threshold)
    return (tp / (tp + fn) if tp + fn else float("nan")), (fp / (fp + tn) if fp + tn else float("nan"))


def balanced_accuracy(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> float:
    """Mean of the recalls of both classes: accuracy with both classes weighing the same."""
    tpr, fpr = _rates(labels, probs, threshold)
    return (tpr + 1 - fpr) / 2


def balanced_f1(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of the positive class with both classes weighing the same (precision TPR / (TPR + FPR))."""
    tpr, fpr = _rates(labels, probs, threshold)
    return 2 * tpr / (1 + tpr + fpr)


#: name -> (metric, which threshold it is decided at).
_METRICS = {
    "accuracy": (accuracy, "natural"), "f1_positive": (f1_positive, "natural"), "f1_macro": (f1_macro, "natural"),
    "f1_weighted": (f1_weighted, "natural"), "balanced_accuracy": (balanced_accuracy, "balanced"),
    "balanced_f1": (balanced_f1, "balanced"),
}


def decision_metrics(labels: np.ndarray, probs: np.ndarray, *, threshold: float = 0.5, balanced_threshold: float = 0.5,
                     resamples: int = 200) -> dict[str, float | list[float]]:
    """Every decision metric, the natural ones at `threshold` and the balanced ones at
    `balanced_threshold`, each with its 95% percentile bootstrap interval (`<name>_ci`)."""
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=float)
    thresholds = {"natural": threshold, "balanced": balanced_threshold}
    metrics: dict[str, float | list[float]] = {}
    for name, (metric, which) in _METRICS.items():
        decide = partial(metric, threshold=thresholds[which])
        metrics[name] = round(float(decide(labels, probs)), 4)
        metrics[f"{name}_ci"] = bootstrap_ci(labels, probs, decide, resamples=resamples)
    return metrics
