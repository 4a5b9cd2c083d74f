"""Decisions: eligibility, caps and budget under concurrency, propensities, outcomes and replay."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from shopformer.policy.actions import ActionConfig
from shopformer.policy.bandits import LinUCB
from shopformer.policy.decide import Candidates, NextBestAction, choice_probabilities
from shopformer.policy.log import DecisionLog, OutcomeConflict
from shopformer.policy.state import context_vector, state_features

DAY = 86_400.0
CARTED = state_features(["view", "cart"], [0, 3600], now=7200)
IDLE = state_features(["view"], [0], now=7200)


def actions(**top) -> ActionConfig:
    return ActionConfig.from_dict({"actions": [
        {"name": "nothing", "kind": "none"},
        {"name": "coupon", "kind": "coupon", "discount": 0.1, "cost": 1.0, "eligible": ["carts_open >= 1"],
         "cap": {"count": 1, "days": 7}},
        {"name": "email", "kind": "message", "cost": 0.1},
    ], **top})


def coupons_pay(decider: NextBestAction) -> None:
    """Teaches the decider that coupons earn 10 and the rest nothing, for carted users."""
    contexts = np.repeat(context_vector(CARTED), 150, 0)
    decider.bandit.update(contexts, np.repeat([0, 1, 2], 50), np.repeat([0.0, 10.0, 0.0], 50))


def test_ineligible_actions_are_never_chosen_and_propensities_are_logged(tmp_path):
    decider = NextBestAction(actions(), DecisionLog(tmp_path / "d.sqlite"), seed=0)
    chosen = {decider.decide(f"u{n}", IDLE, now=DAY).decision.action for n in range(60)}
    assert "coupon" not in chosen and chosen <= {"nothing", "email"}
    choice = decider.decide("v", IDLE, now=DAY)
    assert 0 < choice.decision.propensity <= 1
    assert any("coupon not eligible: carts_open >= 1 does not hold" in r for r in choice.reasons)


def test_a_cap_holds_within_its_window_and_frees_after_it(tmp_path):
    log = DecisionLog(tmp_path / "d.sqlite")
    decider = NextBestAction(actions(), log, seed=0)
    coupons_pay(decider)
    taken = [decider.decide("u", CARTED, now=DAY + hour * 3600).decision.action for hour in range(20)]
    assert taken.count("coupon") == 1
    assert decider.decide("u", CARTED, now=DAY + 8 * DAY).decision.action == "coupon"


def test_the_budget_bounds_the_total_cost_in_its_window(tmp_path):
    decider = NextBestAction(actions(budget={"amount": 3.0, "days": 1}), DecisionLog(tmp_path / "d.sqlite"), seed=0)
    coupons_pay(decider)
    spent = sum(decider.decide(f"u{n}", CARTED, now=DAY + n).decision.cost for n in range(20))
    assert 2.0 <= spent <= 3.0 + 1e-9


def test_concurrent_deciders_on_one_log_file_never_exceed_a_cap(tmp_path):
    path = tmp_path / "d.sqlite"
    config = actions(exploration=1.0)
    chosen: list[str] = []

    def worker(seed: int) -> None:  # its own connection, as another thread or process would have
        decider = NextBestAction(config, DecisionLog(path), seed=seed)
        for step in range(10):
            chosen.append(decider.decide("same-user", CARTED, now=DAY + step).decision.action)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(chosen) == 160 and chosen.count("coupon") == 1
    assert len(DecisionLog(path).decisions()) == 160


def test_outcomes_teach_the_policy_and_are_replayed_after_a_restart(tmp_path):
    path = tmp_path / "d.sqlite"
    decider = NextBestAction(actions(exploration=0.3), DecisionLog(path), seed=1)
    for n in range(300):
        decision = decider.decide(f"u{n}", IDLE, now=DAY + n).decision
        decider.record_outcome(decision.decision_id, 1.0 if decision.action == "email" else 0.0, now=DAY + n)
    share = np.mean([decider.decide(f"w{n}", IDLE, now=2 * DAY).decision.action == "email" for n in range(100)])
    assert share > 0.8
    reopened = NextBestAction(actions(exploration=0.3), DecisionLog(path), seed=2)
    assert reopened.replayed == 300
    np.testing.assert_allclose(reopened.bandit.moment, decider.bandit.moment)


def test_an_outcome_is_set_once_and_unknown_decisions_are_not_found(tmp_path):
    decider = NextBestAction(actions(), DecisionLog(tmp_path / "d.sqlite"), seed=0)
    decision = decider.decide("u", IDLE, now=DAY).decision
    decider.record_outcome(decision.decision_id, 2.5)
    assert decider.record_outcome(decision.decision_id, 2.5).reward == 2.5  # a resend is fine
    with pytest.raises(OutcomeConflict, match="already has the outcome 2.5"):
        decider.record_outcome(decision.decision_id, 1.0)
    with pytest.raises(LookupError, match="no decision 'nope'"):
        decider.record_outcome("nope", 1.0)
    assert decider.log.forget("u") == 1
    erased = decider.log.decisions()[0]
    assert (erased.user_id, erased.context, erased.action) == ("", {}, decision.action)


def test_forgetting_a_user_keeps_what_they_cost_against_the_budget(tmp_path):
    decider = NextBestAction(actions(budget={"amount": 1.0, "days": 1}), DecisionLog(tmp_path / "d.sqlite"), seed=0)
    coupons_pay(decider)
    spent = 0.0
    for n in range(5):
        decision = decider.decide("u1", CARTED, now=DAY + n).decision
        decider.record_outcome(decision.decision_id, 1.0)
        spent += decision.cost
    decider.log.forget("u1")
    spent += sum(decider.decide("u2", CARTED, now=DAY + 10 + n).decision.cost for n in range(5))
    assert spent <= 1.0 + 1e-9
    reopened = NextBestAction(actions(), DecisionLog(tmp_path / "d.sqlite"), seed=0)
    assert reopened.replayed == 0  # an erased user's decisions teach nothing


@pytest.mark.parametrize("policy", ["linucb", "linear-thompson", "neural-linear-thompson", "epsilon-greedy"])
def test_every_configured_policy_decides_and_learns(tmp_path, policy):
    decider = NextBestAction(actions(policy=policy), DecisionLog(tmp_path / "d.sqlite"), seed=0)
    for n in range(40):
        decision = decider.decide(f"u{n}", CARTED, now=DAY + n).decision
        decider.record_outcome(decision.decision_id, float(decision.action == "email"))
    assert decider.bandit.counts.sum() == 40 and 0 < decision.propensity <= 1


def test_a_slate_is_picked_from_the_candidates_and_learns_from_clicks(tmp_path):
    config = ActionConfig.from_dict({"actions": [{"name": "nothing", "kind": "none"},
                                                 {"name": "for-you", "kind": "slate", "size": 2, "candidates": 4}],
                                     "exploration": 1.0})
    vectors = np.random.default_rng(0).normal(size=(12, 4))
    candidates = Candidates(["a", "b", "c", "d"], np.array([2, 3, 4, 5]), np.array([0.4, 0.3, 0.2, 0.1]), np.array([6, 7]))
    decider = NextBestAction(config, DecisionLog(tmp_path / "d.sqlite"), seed=0)
    decider.use_item_vectors(vectors, "bundle@1", [])
    slate = next(c.decision for c in iter(lambda: decider.decide("u", IDLE, now=DAY, candidates=candidates), None)
                 if c.decision.action == "for-you")
    assert len(slate.slate["items"]) == 2 and set(slate.slate["items"]) <= {"a", "b", "c", "d"}
    decider.record_outcome(slate.decision_id, 1.0, clicked=slate.slate["items"][:1])
    assert decider.slates.bandit.count == 2 and decider.slates.bandit.arm.moment.any()
    reopened = NextBestAction(config, DecisionLog(tmp_path / "d.sqlite"), seed=0)
    reopened.use_item_vectors(vectors, "bundle@1", reopened.log.decisions(with_outcome=True))
    np.testing.assert_allclose(reopened.slates.bandit.arm.moment, decider.slates.bandit.arm.moment, atol=1e-5)
    # Another bundle's vectors: its slates start afresh.
    reopened.use_item_vectors(vectors, "bundle@2", reopened.log.decisions(with_outcome=True))
    assert reopened.slates.bandit.count == 0


def test_choice_probabilities_are_a_distribution_over_allowed_actions_with_a_floor():
    bandit = LinUCB(3, 2, alpha=0.0).update(np.ones((5, 2)), np.zeros(5, int), np.ones(5))
    probs = choice_probabilities(bandit, np.ones((1, 2)), np.zeros(3), np.array([True, False, True]), exploration=0.1)[0]
    np.testing.assert_allclose(probs, [0.95, 0.0, 0.05])
