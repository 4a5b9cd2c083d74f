"""The actions a shop lets the next-best-action layer take, read from a strict YAML file.

    policy: linucb                   # linucb | linear-thompson | neural-linear-thompson | epsilon-greedy
    exploration: 0.01                # share of decisions drawn uniformly among the allowed actions
    use_predictions: false           # true: rules and the policy also read intent, propensity and churn
    budget: {amount: 200.0, days: 1}  # total cost of all decisions in any window of this many days
    actions:
      - {name: nothing, kind: none}
      - {name: coupon-10, kind: coupon, discount: 0.10, cost: 0.5,
         eligible: ["carts_open >= 1"], cap: {count: 1, days: 7}}
      - {name: win-back, kind: message, cost: 0.05, eligible: ["hours_since_last_event >= 336"]}
      - {name: cart-reminder, kind: reminder, eligible: ["carts_open >= 1", "hours_since_last_cart <= 48"]}
      - {name: for-you, kind: slate, size: 5, candidates: 50}   # the slate bandit picks 5 of the model's top 50

An action may be taken when every one of its `eligible` rules holds on the user's state, its
per-user `cap` (at most `count` times in any `days` days) is not reached and its `cost` fits the
budget. One `none` action with no rules, cap or cost is required: it is what is left when nothing
else may be taken. Unknown keys, unknown state features and malformed rules are errors at load time.
"""

from __future__ import annotations

import operator
import re
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from shopformer.config import StrictConfig, read_yaml_file
from shopformer.errors import ConfigError
from shopformer.policy.state import PREDICTION_FEATURES, STATE_FEATURES

__all__ = ["Action", "ActionConfig", "Budget", "Cap", "Rule", "load_actions"]

_OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq, "!=": operator.ne}
_RULE = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")


class Rule:
    """`feature op number`, e.g. `carts_open >= 1`."""

    def __init__(self, text: str) -> None:
        match = _RULE.match(text)
        if match is None:
            raise ValueError(f"rule {text!r} is not `feature op number` (op one of {', '.join(_OPERATORS)})")
        self.text, self.feature, self.op, self.threshold = text.strip(), match[1], match[2], float(match[3])
        if self.feature not in (*STATE_FEATURES, *PREDICTION_FEATURES):
            known = ", ".join((*STATE_FEATURES, *PREDICTION_FEATURES))
            raise ValueError(f"rule {text!r}: unknown state feature {self.feature!r}; known: {known}")

    def holds(self, state: dict[str, float]) -> bool:
        return bool(_OPERATORS[self.op](state[self.feature], self.threshold))


class Cap(StrictConfig):
    count: int = Field(ge=1)
    days: float = Field(gt=0)


class Budget(StrictConfig):
    amount: float = Field(gt=0)
    days: float = Field(gt=0)


class Action(StrictConfig):
    """One action; `discount` belongs to coupons (a share of the price), `size` to slates."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: Literal["none", "slate", "coupon", "message", "reminder"]
    cost: float = Field(0.0, ge=0)
    discount: float | None = Field(None, gt=0, lt=1)
    size: int | None = Field(None, ge=1, le=100)
    #: How many of the model's top items a slate is chosen from (slates only; default 50).
    candidates: int | None = Field(None, ge=1, le=1000)
    eligible: list[str] = Field(default_factory=list)
    cap: Cap | None = None

    @field_validator("eligible")
    @classmethod
    def _rules_parse(cls, rules: list[str]) -> list[str]:
        for rule in rules:
            Rule(rule)
        return rules

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> Action:
        if (self.kind == "coupon") != (self.discount is not None):
            raise ValueError(f"action {self.name!r}: `discount` is given for coupons and only for coupons")
        if (self.size is not None or self.candidates is not None) and self.kind != "slate":
            raise ValueError(f"action {self.name!r}: `size` and `candidates` are only for slates")
        if self.candidates is not None and self.candidates < (self.size or 10):
            raise ValueError(f"action {self.name!r}: `candidates` must be at least the slate's `size`")
        if self.kind == "none" and (self.eligible or self.cap or self.cost):
            raise ValueError(f"action {self.name!r}: the `none` action has no rules, cap or cost")
        return self

    def rules(self) -> list[Rule]:
        return [Rule(text) for text in self.eligible]


class ActionConfig(StrictConfig):
    """The shop's actions, its budget and the learning policy that chooses among them."""

    config_name: ClassVar[str] = "actions"
    policy: Literal["linucb", "linear-thompson", "neural-linear-thompson", "epsilon-greedy"] = "linucb"
    #: A floor under every allowed action's probability, so later off-policy evaluation can re-weight any policy
    #: (epsilon-greedy explores at the larger of this and its own epsilon, 0.1).
    exploration: float = Field(0.01, ge=0, le=1)
    #: Add the task models' intent, propensity and churn probabilities to the state (the bundle needs prediction heads).
    use_predictions: bool = False
    budget: Budget | None = None
    actions: list[Action] = Field(min_length=2)

    @model_validator(mode="after")
    def _names_unique_and_one_none(self) -> ActionConfig:
        names = [a.name for a in self.actions]
        if len(set(names)) != len(names):
            raise ValueError(f"action names must be unique: {names}")
        if sum(a.kind == "none" for a in self.actions) != 1:
            raise ValueError("exactly one action of kind `none` is required: the choice when nothing else may be taken")
        uses = sorted({r.feature for a in self.actions for r in a.rules() if r.feature in PREDICTION_FEATURES})
        if uses and not self.use_predictions:
            raise ValueError(f"rules read predictions ({', '.join(uses)}): set `use_predictions: true`")
        return self

    @property
    def features(self) -> tuple[str, ...]:
        """The state features decisions read: the behaviour state, and the predictions if used."""
        return (*STATE_FEATURES, *PREDICTION_FEATURES) if self.use_predictions else STATE_FEATURES

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.actions]

    def action(self, name: str) -> Action:
        return self.actions[self.names.index(name)]

    @property
    def fallback(self) -> str:
        return next(a.name for a in self.actions if a.kind == "none")

    def failed_rules(self, state: dict[str, float]) -> dict[str, list[str]]:
        """For each action, its eligibility rules that do not hold on `state` (empty: eligible)."""
        missing = [f for f in self.features if f not in state]
        if missing:
            raise ConfigError(f"the user state lacks {missing}")
        return {a.name: [r.text for r in a.rules() if not r.holds(state)] for a in self.actions}


def load_actions(path: str | Path) -> ActionConfig:
    """The action config in the YAML file at `path`; every problem in one `ConfigError` naming the file."""
    return ActionConfig.from_dict(read_yaml_file(path), where=str(path))
