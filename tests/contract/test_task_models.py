"""Every task model of `shopformer.tasks.registry.MODEL_FACTORIES` under the estimator contract
(`tests/contract/base.py`), on the churn examples of a small demo shop.

The three Shopformer task models share one behaviour model pre-trained once for the session
(`task_data.shared`, as `TaskPredictor` shares one per dataset); a class here only names its model.
"""

from __future__ import annotations

from shopformer.tasks.registry import MODEL_FACTORIES
from tests.contract.base import TaskModelContract


class TestLightGBM(TaskModelContract):
    NAME = "lightgbm"
    SEEDED = "LightGBM's seed is fixed (LightGBMModel.BASE_PARAMS seed 0): there is no seed to vary"


class TestLogistic(TaskModelContract):
    NAME = "logistic"
    SEEDED = "the logistic regression's solver is deterministic: there is no seed to vary"


class TestShopformerHybrid(TaskModelContract):
    NAME = "shopformer"
    SEEDED = ("HybridTaskModel exposes no seed: its heads train with HeadTraining() (seed 0) and LightGBM "
              "with seed 0")


class TestShopformerFinetune(TaskModelContract):
    NAME = "shopformer-finetune"


class TestShopformerFrozen(TaskModelContract):
    NAME = "shopformer-frozen"


def test_every_registered_task_model_is_under_the_contract():
    """A model added to `MODEL_FACTORIES` must get a contract class here."""
    assert {cls.NAME for cls in TaskModelContract.__subclasses__()} == set(MODEL_FACTORIES)
