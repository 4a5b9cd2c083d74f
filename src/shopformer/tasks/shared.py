"""What the task models of one dataset share: the behaviour model, and how `predict/` fits or loads one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shopformer.data.prepared import PreparedDataset
from shopformer.models.base import BehaviourModel

__all__ = ["SharedBehaviour"]


@dataclass
class SharedBehaviour:
    """The behaviour model the task models of one dataset share, and how to get one.

    `fit(prepared, train, model)` fits a new behaviour model (`train`/`model`: config overrides);
    `load(folder)` reads a saved one. `model` is set once fitted or loaded; `pretrained` says it was
    fitted here, so task models save a copy beside themselves. `bundle_dir` is the bundle task
    models are loaded from.
    """

    fit: Callable[[PreparedDataset, dict, dict | None], BehaviourModel] | None = None
    load: Callable[[Path], BehaviourModel] | None = None
    model: BehaviourModel | None = None
    pretrained: bool = False
    bundle_dir: Path | None = None
