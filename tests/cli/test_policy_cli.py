"""`shopformer policy evaluate` and `shopformer benchmark simulate` from the command line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from shopformer.cli import app
from shopformer.policy.actions import load_actions
from shopformer.policy.decide import NextBestAction
from shopformer.policy.log import DecisionLog
from shopformer.policy.state import state_features

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "actions.yaml"


def write_log(path: Path, decisions: int) -> None:
    """Decisions under the example actions whose outcome favours the cart reminder."""
    decider = NextBestAction(load_actions(EXAMPLE), DecisionLog(path), seed=0)
    rng = np.random.default_rng(0)
    for n in range(decisions):
        kinds, times = (["view", "cart"], [0, 3600]) if n % 2 else (["view"], [0])
        choice = decider.decide(f"u{n}", state_features(kinds, times, now=7200 + int(rng.integers(0, 100_000))), now=1e6 + n)
        won = rng.random() < (0.4 if choice.decision.action == "cart-reminder" else 0.05)
        decider.record_outcome(choice.decision.decision_id, 5.0 * won)


def test_policy_evaluate_values_every_policy_on_the_later_decisions(tmp_path):
    write_log(tmp_path / "decisions.sqlite", 400)
    result = CliRunner().invoke(app, ["policy", "evaluate", str(tmp_path / "decisions.sqlite"), "--actions", str(EXAMPLE),
                                      "--json", str(tmp_path / "ope.json")])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "ope.json").read_text())
    assert document["test_rounds"] == 120 and {"always cart-reminder", "linucb", "linear-thompson"} <= set(document["policies"])
    reminder, nothing = document["policies"]["always cart-reminder"]["dr"], document["policies"]["always nothing"]["dr"]
    assert reminder["value"] > nothing["value"] and reminder["low"] <= reminder["value"] <= reminder["high"]


def test_policy_evaluate_names_what_is_wrong(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["policy", "evaluate", str(tmp_path / "none.sqlite"), "--actions", str(EXAMPLE)])
    assert missing.exit_code != 0 and "no such decision log" in missing.output
    write_log(tmp_path / "few.sqlite", 5)
    few = runner.invoke(app, ["policy", "evaluate", str(tmp_path / "few.sqlite"), "--actions", str(EXAMPLE)])
    assert few.exit_code != 0 and "at least 20 decisions with an outcome; the log has 5" in few.output
    write_log(tmp_path / "short.sqlite", 25)
    short = runner.invoke(app, ["policy", "evaluate", str(tmp_path / "short.sqlite"), "--actions", str(EXAMPLE),
                                "--train-share", "0.9"])
    assert short.exit_code != 0 and "at least 10 rounds to learn on and 10 to value on" in short.output
    not_a_log = tmp_path / "events.sqlite"
    sqlite3.connect(not_a_log).execute("CREATE TABLE events (x)").connection.commit()
    wrong = runner.invoke(app, ["policy", "evaluate", str(not_a_log), "--actions", str(EXAMPLE)])
    assert wrong.exit_code != 0 and "not a decision log" in wrong.output
    assert "Traceback" not in missing.output + few.output + short.output + wrong.output


def test_benchmark_simulate_writes_streams_then_reads_a_peer(tmp_path):
    runner = CliRunner()
    work = tmp_path / "sim"
    streams = runner.invoke(app, ["benchmark", "simulate", "--work", str(work), "--seeds", "1", "--rounds", "400", "--users", "150",
                                  "--streams-only"])
    assert streams.exit_code == 0, streams.output
    with np.load(work / "stream_1.npz") as stream:
        np.savez(work / "peer_1.npz", actions=np.zeros(len(stream["context"]), dtype=np.int64))
    result = runner.invoke(app, ["benchmark", "simulate", "--work", str(work), "--seeds", "1", "--rounds", "400", "--users", "150",
                                 "--peer", f"always-nothing={work}/peer_{{seed}}.npz", "--json", str(tmp_path / "r.json"),
                                 "--plot", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "r.json").read_text())
    policies = document["streams"][0]["policies"]
    assert policies["always-nothing"]["regret"] == policies["no action"]["regret"]  # a peer that does nothing is the rule
    assert document["retention"]["policies"] and (tmp_path / "r.png").stat().st_size > 10_000
