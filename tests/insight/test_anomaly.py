"""Bot and fraud scores on a small log where the bad actors are obvious: who is flagged, why, and inputs
that lack optional columns, PyOD or a fitted model."""

from __future__ import annotations

import sys

import numpy as np
import polars as pl
import pytest
import torch

from shopformer.data.schema import EventLog
from shopformer.errors import ConfigError, DataError, NotFittedError
from shopformer.insight.anomaly import INSTALL_HINT, AnomalyDetector, score_users, user_signals
from shopformer.insight.fraud import behaviour_features, sequence_surprisal

START = 1_709_283_600  # 2024-03-01 09:00 UTC
BOTS, FRAUDSTERS = ("bot1", "bot2", "bot3"), ("fraud1", "fraud2")


def _events(user: str, times, kinds, items, value=None) -> list[dict]:
    return [{"user_id": user, "item_id": item, "timestamp": int(t), "event_type": kind, "value": value}
            for t, kind, item in zip(times, kinds, items)]


def shop_log(seed: int = 0) -> pl.DataFrame:
    """60 shoppers (a few sessions of views a minute apart, sometimes a purchase days later), 3 crawlers
    (300 views 1-2 s apart, never buying) and 2 fraudsters (4 dear items bought minutes after arriving)."""
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    for u in range(60):
        first = START + rng.integers(0, 20) * 86_400
        for s in range(rng.integers(2, 6)):
            n = int(rng.integers(3, 12))
            times = first + s * 3 * 86_400 + np.cumsum(rng.integers(20, 120, n))
            kinds = ["view"] * n
            if s > 0 and rng.random() < 0.5:
                kinds[-1] = "purchase"
            rows += _events(f"user{u:02d}", times, kinds, [f"i{k}" for k in rng.integers(0, 50, n)], value=float(rng.integers(5, 40)))
    for bot in BOTS:
        times = START + np.cumsum(rng.integers(1, 3, 300))
        rows += _events(bot, times, ["view"] * 300, [f"i{k}" for k in rng.integers(0, 50, 300)], value=10.0)
    for fraud in FRAUDSTERS:
        times = START + 5 * 86_400 + np.arange(8) * 20
        rows += _events(fraud, times, ["view", "purchase"] * 4, ["i90", "i90", "i91", "i91", "i92", "i92", "i93", "i93"], value=900.0)
    return pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String, "timestamp": pl.Int64,
                                      "event_type": pl.String, "value": pl.Float64})


BAD = set(BOTS) | set(FRAUDSTERS)


def test_the_bad_actors_are_the_flagged_ones_with_reasons():
    log = shop_log()
    scored = score_users(log, flag_share=len(BAD) / 65)
    assert scored.columns == ["user_id", "anomaly_score", "flagged", "reasons"]
    assert scored.schema["reasons"] == pl.List(pl.String) and scored.height == 65
    assert set(scored.filter("flagged")["user_id"]) == BAD
    reasons = dict(zip(scored["user_id"], scored["reasons"].to_list()))
    assert any("s apart, never bought" in r for r in reasons["bot1"]), reasons["bot1"]
    assert any("first purchase" in r or "spent" in r for r in reasons["fraud1"]), reasons["fraud1"]
    assert reasons["user00"] == []


@pytest.mark.parametrize("method", ["tail", "iforest", "ecod", "copod"])
def test_every_method_ranks_the_bots_first(method):
    scored = score_users(shop_log(), method=method).sort("anomaly_score", descending=True)
    assert set(scored["user_id"].head(3)) <= BAD


def test_a_threshold_flags_by_score():
    scored = score_users(shop_log(), method="tail", threshold=1e9)
    assert not scored["flagged"].any()


def test_an_event_log_without_sessions_values_or_quantities_is_sessionized():
    log = EventLog(shop_log().drop("value"))
    table = behaviour_features(log)
    assert table.filter(pl.col("user_id") == "bot1")["median_gap_s"].item() <= 2
    assert table["first_day_spend"].max() == 0.0
    assert set(score_users(log, method="tail", flag_share=0.05).filter("flagged")["user_id"]) <= BAD


def test_missing_required_columns_name_them():
    with pytest.raises(DataError, match="event_type"):
        score_users(shop_log().drop("event_type"))


def test_accounts_sharing_a_device_are_a_reason():
    log = shop_log()
    users = log["user_id"].unique().sort()
    devices = [("shared" if u in FRAUDSTERS else f"d-{u}") for u in users]
    accounts = pl.DataFrame({"user_id": users, "device_id": devices,
                             "signup_time": [START + 5 * 86_400 if u in FRAUDSTERS else START - 86_400 for u in users]})
    scored = score_users(log, accounts=accounts, method="tail", flag_share=len(BAD) / 65)
    reasons = dict(zip(scored["user_id"], scored["reasons"].to_list()))
    assert "device shared by 2 accounts" in reasons["fraud1"]
    assert any("after sign-up" in r for r in reasons["fraud2"])
    # An account table without device or IP columns adds sign-up only.
    table, signals = user_signals(log, accounts=accounts.drop("device_id"))
    assert "accounts_per_device_id" not in table.columns and "accounts_per_device_id" not in signals


def test_fit_on_some_users_and_score_new_ones():
    table = behaviour_features(shop_log())
    regular = table.filter(pl.col("user_id").str.starts_with("user"))
    detector = AnomalyDetector("tail").fit(regular)
    scores = dict(zip(table["user_id"], detector.score(table)))
    assert min(scores[b] for b in BOTS) > max(scores[u] for u in regular["user_id"])
    tails = detector.tail_probabilities(table.filter(pl.col("user_id") == "bot1"))
    assert tails["median_gap_s"][0] == pytest.approx(1 / (regular.height + 1))
    # The default score places users among the fitted ones: alone or in a batch, the same score.
    default = AnomalyDetector().fit(regular)
    together = default.score(table)
    alone = default.score(table.filter(pl.col("user_id") == "bot1"))
    assert alone[0] == pytest.approx(together[table["user_id"].to_list().index("bot1")])
    assert 0.9 < alone[0] <= 1.0


def test_missing_pyod_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyod.models.ecod", None)
    with pytest.raises(ConfigError, match=INSTALL_HINT.replace("[", r"\[").replace("]", r"\]")):
        score_users(shop_log())


def test_wrong_method_and_unfitted_detector_are_errors():
    with pytest.raises(ConfigError, match="unknown anomaly method"):
        AnomalyDetector("lof")
    with pytest.raises(NotFittedError):
        AnomalyDetector().score(behaviour_features(shop_log()))


class UniformModel:
    """A behaviour model that finds every item equally likely: surprisal is log(n_items) per step."""

    max_len, uses_time_gaps, num_threads, event_vocabulary = 5, True, 1, ("view", "purchase")
    n_items = 12

    def item_codes(self, item_ids):
        return np.array([2 + int(i[1:]) % 10 if i.startswith("i") else 1 for i in item_ids])

    def score_histories(self, histories):
        return torch.zeros(len(histories.lengths), self.n_items)


def test_surprisal_under_a_behaviour_model():
    log = shop_log().filter(pl.col("user_id").is_in(["bot1", "user01"]))
    surprisal = sequence_surprisal(UniformModel(), log, steps=10)
    assert surprisal["surprisal"].to_list() == pytest.approx([np.log(12)] * 2)
    scored = score_users(shop_log(), behaviour=UniformModel(), method="tail", flag_share=0.05)
    assert scored.height == 65
