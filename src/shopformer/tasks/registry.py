"""The registry of task models: factories for fitting, loaders for saved models.

`MODEL_FACTORIES[name](context, shared)` returns an unfitted `TaskModel`. `shared` is one
`SharedBehaviour` per dataset: the behaviour model the Shopformer task models share across tasks
(fitted once, or the bundle's), and the functions `predict/` hands over to fit or load one; the
caller keeps it alive for all tasks of that dataset.

`MODEL_LOADERS[kind](directory, shared)` rebuilds a saved model from the folder its `save` wrote;
`kind` is the `"kind"` field of that folder's `model.json`. When loading from a bundle,
`shared.bundle_dir` is the bundle's folder, so a loader can reach the behaviour model saved there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shopformer.errors import ConfigError, DataError
from shopformer.tasks.base import TaskContext, TaskModel
from shopformer.tasks.baselines import LightGBMModel, LogisticModel, model_meta
from shopformer.tasks.hybrid import hybrid_factory, load_hybrid_model
from shopformer.tasks.shared import SharedBehaviour
from shopformer.tasks.transformer_models import (
    FINETUNE,
    load_transformer_model,
    transformer_factory,
)

__all__ = ["MODEL_FACTORIES", "MODEL_LOADERS", "SharedBehaviour", "load_model", "make_model", "shopformer_family"]


ModelFactory = Callable[[TaskContext, SharedBehaviour], TaskModel]
ModelLoader = Callable[[Path, SharedBehaviour], TaskModel]

MODEL_FACTORIES: dict[str, ModelFactory] = {
    "lightgbm": lambda context, shared: LightGBMModel(),
    "logistic": lambda context, shared: LogisticModel(),
    # The default: the hybrid (LightGBM on the features, the frozen head's score and the Transformer's
    # state), the variant with the best validation AUC on Taobao and the demo shop.
    "shopformer": hybrid_factory("shopformer"),
    "shopformer-finetune": transformer_factory("shopformer-finetune", finetune=True, training=FINETUNE),
    "shopformer-frozen": transformer_factory("shopformer-frozen", finetune=False),
}

MODEL_LOADERS: dict[str, ModelLoader] = {
    "lightgbm": lambda directory, shared: LightGBMModel.load(directory),
    "logistic": lambda directory, shared: LogisticModel.load(directory),
    "transformer": load_transformer_model,
    "shopformer-hybrid": load_hybrid_model,
}


def make_model(name: str, context: TaskContext, shared: SharedBehaviour) -> TaskModel:
    """An unfitted model by registry name; an unknown name is a `ConfigError` listing the known ones."""
    if name not in MODEL_FACTORIES:
        raise ConfigError(f"unknown task model {name!r}; choose from {', '.join(MODEL_FACTORIES)}")
    return MODEL_FACTORIES[name](context, shared)


def load_model(directory: str | Path, shared: SharedBehaviour | None = None) -> TaskModel:
    """The saved model in `directory`, by the `kind` its `model.json` names."""
    kind = model_meta(directory).get("kind")
    if kind not in MODEL_LOADERS:
        raise DataError(f"saved task model of unknown kind {kind!r}", path=str(Path(directory) / "model.json"),
                        expected=" or ".join(MODEL_LOADERS))
    return MODEL_LOADERS[kind](Path(directory), SharedBehaviour() if shared is None else shared)


def shopformer_family(name: str) -> bool:
    """Whether a model name is one of Shopformer's (the default or a variant such as the hybrid)."""
    return name == "shopformer" or name.startswith("shopformer-")
