"""Evaluation: ranking metrics and the full-ranking next-item protocol."""

from shopformer.evaluate.metrics import DEFAULT_KS, item_coverage, ranking_metrics, target_ranks
from shopformer.evaluate.ranking import evaluate_next_item, leave_one_out_targets

__all__ = [
    "DEFAULT_KS",
    "evaluate_next_item",
    "item_coverage",
    "leave_one_out_targets",
    "ranking_metrics",
    "target_ranks",
]
