"""Training of the behaviour Transformer: configs, objectives, batching and the training loop."""

from shopformer.train.batches import SequenceArrays
from shopformer.train.config import ModelConfig, TrainConfig
from shopformer.train.trainer import Trainer, evaluate_next_item, full_ranking_metrics

__all__ = ["ModelConfig", "SequenceArrays", "TrainConfig", "Trainer", "evaluate_next_item", "full_ranking_metrics"]
