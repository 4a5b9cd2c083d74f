"""The actions file: strict, with rules checked at load time."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopformer.errors import ConfigError
from shopformer.policy.actions import ActionConfig, load_actions
from shopformer.policy.state import NEVER_HOURS, state_features

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "actions.yaml"
NONE = {"name": "nothing", "kind": "none"}


def config(*actions: dict, **top) -> ActionConfig:
    return ActionConfig.from_dict({"actions": [NONE, *actions], **top})


def test_the_example_file_loads_and_reads_a_state():
    actions = load_actions(EXAMPLE)
    assert actions.fallback == "nothing" and actions.action("coupon-10").discount == 0.10
    state = state_features(["view", "cart"], [1_000, 2_000], now=2_000 + 3600)
    failed = actions.failed_rules(state)
    assert failed["coupon-10"] == [] and failed["cart-reminder"] == []
    assert failed["win-back"] == ["hours_since_last_event >= 336", "purchases >= 1"]


@pytest.mark.parametrize(("action", "message"), [
    ({"name": "c", "kind": "coupon"}, "`discount` is given for coupons"),
    ({"name": "c", "kind": "coupon", "discount": 0.1, "colour": "red"}, "colour: Extra inputs are not permitted"),
    ({"name": "m", "kind": "message", "eligible": ["churn_risk >= 0.5"]}, "unknown state feature 'churn_risk'"),
    ({"name": "m", "kind": "message", "eligible": ["carts_open => 1"]}, "is not `feature op number`"),
    ({"name": "m", "kind": "message", "cap": {"count": 0, "days": 7}}, "cap.count"),
    ({"name": "nothing", "kind": "message"}, "action names must be unique"),
    ({"name": "n2", "kind": "none"}, "exactly one action of kind `none`"),
])
def test_bad_actions_are_errors_that_say_what_is_wrong(action, message):
    with pytest.raises(ConfigError, match="invalid actions config") as error:
        config(action)
    assert message in str(error.value)


def test_an_unknown_top_level_key_and_policy_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="budgets: Extra inputs"):
        config({"name": "m", "kind": "message"}, budgets={"amount": 1})
    with pytest.raises(ConfigError, match="policy"):
        config({"name": "m", "kind": "message"}, policy="ucb1")
    path = tmp_path / "actions.yaml"
    path.write_text("actions: [{name: x, kind: none}]\n")
    with pytest.raises(ConfigError, match=f"{path}: invalid actions config: actions: List should have at least 2"):
        load_actions(path)
    with pytest.raises(ConfigError, match="no such file"):
        load_actions(tmp_path / "missing.yaml")


def test_rules_on_predictions_need_use_predictions():
    rule = {"name": "save", "kind": "message", "eligible": ["churn >= 0.6"]}
    with pytest.raises(ConfigError, match=r"rules read predictions \(churn\): set `use_predictions: true`"):
        config(rule)
    actions = config(rule, use_predictions=True)
    assert actions.features[-3:] == ("intent", "propensity", "churn")
    state = {**state_features([], [], now=0), "intent": 0.1, "propensity": 0.2, "churn": 0.7}
    assert actions.failed_rules(state)["save"] == []
    with pytest.raises(ConfigError, match="the user state lacks"):
        actions.failed_rules(state_features([], [], now=0))


def test_state_features_count_open_carts_and_recencies():
    hour = 3600
    state = state_features(["view", "cart", "purchase", "cart", "cart", None], [0, hour, 2 * hour, 3 * hour, 4 * hour, 5 * hour],
                           now=10 * hour)
    assert state["carts_open"] == 2 and state["purchases"] == 1 and state["events"] == 6
    assert state["hours_since_last_cart"] == 6 and state["hours_since_last_purchase"] == 8
    assert state_features([], [], now=0)["hours_since_last_event"] == NEVER_HOURS
