"""Metrics of probabilistic predictions: ranking (ROC-AUC, PR-AUC), proper scores, calibration.

Binary tasks take P(label = 1) of shape (n,); next-event-type takes (n, n_classes) rows. The
multi-class versions are the usual ones: macro one-vs-rest AUC and PR-AUC over the classes that
occur, multi-class log-loss, the Brier score summed over classes, and top-label ECE.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

__all__ = ["base_rate", "bootstrap_ci", "brier", "classification_metrics", "ece", "logloss", "pr_auc", "reliability_plot", "roc_auc"]

_EPS = 1e-7


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive outranks a random negative (ties count one half)."""
    labels = np.asarray(labels)
    if scores.ndim == 2:
        present = [k for k in range(scores.shape[1]) if 0 < (labels == k).sum() < len(labels)]
        return float(np.mean([roc_auc_score(labels == k, scores[:, k]) for k in present])) if present else float("nan")
    if labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, scores))


def pr_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (area under the precision-recall curve); macro over classes when multi-class."""
    labels = np.asarray(labels)
    if scores.ndim == 2:
        present = [k for k in range(scores.shape[1]) if (labels == k).any()]
        return float(np.mean([average_precision_score(labels == k, scores[:, k]) for k in present]))
    if labels.max() == 0:
        return float("nan")
    return float(average_precision_score(labels, scores))


def logloss(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels, probabilities clipped to [1e-7, 1 - 1e-7]."""
    labels = np.asarray(labels)
    if probs.ndim == 2:
        return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], _EPS, 1))))
    p = np.clip(probs, _EPS, 1 - _EPS)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def brier(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean squared error of the probabilities (summed over classes when multi-class)."""
    labels = np.asarray(labels)
    if probs.ndim == 2:
        onehot = np.eye(probs.shape[1])[labels]
        return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    return float(np.mean((probs - labels) ** 2))


def ece(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: |mean prediction - observed rate| per equal-width bin, weighted by size.

    Multi-class: the top-label version (confidence of the predicted class vs its accuracy).
    """
    labels = np.asarray(labels)
    if probs.ndim == 2:
        confidence, hits = probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(float)
    else:
        confidence, hits = np.asarray(probs, dtype=float), labels.astype(float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        members = which == b
        total += members.sum() * abs(confidence[members].mean() - hits[members].mean())
    return float(total / len(labels))


def bootstrap_ci(labels: np.ndarray, scores: np.ndarray, metric=roc_auc, resamples: int = 200,
                 seed: int = 0, level: float = 0.95) -> list[float]:
    """Percentile bootstrap confidence interval of `metric` (resampling examples with replacement)."""
    rng = np.random.default_rng(seed)
    n, values = len(labels), []
    for _ in range(resamples):
        pick = rng.integers(0, n, n)
        value = metric(labels[pick], scores[pick])
        if np.isfinite(value):
            values.append(value)
    if not values:
        return [float("nan"), float("nan")]
    tail = (1 - level) / 2 * 100
    return [round(float(np.percentile(values, tail)), 4), round(float(np.percentile(values, 100 - tail)), 4)]


def base_rate(labels: np.ndarray, n_classes: int = 2) -> float | list[float]:
    """Share of positives (binary) or of each class (multi-class)."""
    labels = np.asarray(labels)
    if n_classes == 2:
        return round(float(labels.mean()), 4)
    return [round(float(s), 4) for s in np.bincount(labels, minlength=n_classes) / len(labels)]


def classification_metrics(labels: np.ndarray, probs: np.ndarray, resamples: int = 200) -> dict[str, float | list[float]]:
    """Every metric of the benchmark JSON, with the AUC's bootstrap 95% interval."""
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=float)
    metrics = {"auc": roc_auc(labels, probs), "pr_auc": pr_auc(labels, probs), "logloss": logloss(labels, probs),
               "brier": brier(labels, probs), "ece": ece(labels, probs)}
    metrics = {name: round(value, 4) for name, value in metrics.items()}
    metrics["auc_ci"] = bootstrap_ci(labels, probs, resamples=resamples)
    return metrics


def reliability_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str, bins: int = 15) -> Path:
    """Saves a reliability diagram (observed rate against mean prediction per bin) of binary predictions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for name, (labels, probs) in curves.items():
        which = np.minimum((probs * bins).astype(int), bins - 1)
        used = np.unique(which)
        ax.plot([probs[which == b].mean() for b in used], [labels[which == b].mean() for b in used], marker="o", label=name)
    ax.set(xlabel="predicted probability", ylabel="observed rate", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
