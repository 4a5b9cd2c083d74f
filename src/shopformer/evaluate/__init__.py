"""Evaluation: pure maths on scores and labels. Ranking metrics and the one full-ranking next-item
path, the one top-k-with-filters path, binary-task metrics and calibration."""

from shopformer.evaluate.metrics import (
    DEFAULT_KS,
    item_coverage,
    ranking_metrics,
    target_ranks,
)
from shopformer.evaluate.ranking import (
    evaluate_next_item,
    history_cells,
    leave_one_out_targets,
    top_k_items,
)

__all__ = [
    "DEFAULT_KS",
    "evaluate_next_item",
    "history_cells",
    "item_coverage",
    "leave_one_out_targets",
    "ranking_metrics",
    "target_ranks",
    "top_k_items",
]
