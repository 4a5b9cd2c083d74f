"""Training of the behaviour Transformer: objectives, batching and the training loop."""

from shopformer.train.config import TrainConfig
from shopformer.train.trainer import Trainer

__all__ = ["TrainConfig", "Trainer"]
