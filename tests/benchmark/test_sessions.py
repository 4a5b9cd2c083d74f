"""The session next-item benchmark on small session lists: the shipped split, P@20 / MRR@20, errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from shopformer.benchmark.sessions import run_session_benchmark
from shopformer.cli import app
from shopformer.data.formats import read_dataset
from shopformer.errors import ConfigError

runner = CliRunner()
CYCLE = 30  # item k is always followed by item k + 1 (mod CYCLE): a first-order chain


def _write_sessions(tmp_path, n_train: int = 240, n_test: int = 40):
    """Train sessions and test cases walking the chain from varied starts; returns their paths."""
    def walk(start: int, length: int) -> list[int]:
        return [1 + (start + step) % CYCLE for step in range(length)]

    # The last session's only transition, 31 -> 32, is its last click: a validation target only.
    train = [" ".join(map(str, walk(s, 3 + s % 4))) for s in range(n_train - 1)] + ["31 32"]
    tests = []
    for s in range(n_test):
        items = walk(s * 7, 2 + s % 3)
        tests.append(" ".join(map(str, items[:-1])) + "\t" + str(items[-1]))
    train_path, test_path = tmp_path / "train_sessions.txt", tmp_path / "test_prefix_target.txt"
    train_path.write_text("\n".join(train) + "\n")
    test_path.write_text("\n".join(tests) + "\n")
    return train_path, test_path


def test_a_first_order_chain_is_ranked_first_by_the_markov_baseline(tmp_path):
    train_path, test_path = _write_sessions(tmp_path)
    document = run_session_benchmark(read_dataset("sessions", train_path, test_path=test_path), models=("markov", "popular"))
    rows = {(r["model"], r["split"]): r for r in document["results"]}
    assert rows["markov", "test"]["p@20"] == 100.0 and rows["markov", "test"]["mrr@20"] == 100.0
    assert rows["markov", "test"]["n_cases"] == 40 and rows["markov", "valid"]["n_cases"] == 240
    # The chain is uniform over 30 items: popularity puts the target at rank 1 only by chance.
    assert rows["popular", "test"]["mrr@20"] < 50.0
    # Valid targets (each session's last click) are kept out of the valid-row baseline's counts:
    # 31 -> 32 was never seen, so the valid row is not perfect.
    assert rows["markov", "valid"]["mrr@20"] < 100.0
    assert document["dataset"]["train_sessions"] == 240 and document["dataset"]["test_cases"] == 40


def test_the_cli_trains_the_transformer_and_writes_p20_and_mrr20(tmp_path):
    train_path, test_path = _write_sessions(tmp_path)
    out = tmp_path / "sessions.json"
    result = runner.invoke(app, [
        "benchmark", "next-item", "--format", "sessions", "--events", str(train_path), "--test-cases", str(test_path),
        "--models", "shopformer,markov", "--json", str(out), "--set", "model.dim=16", "--set", "model.layers=1",
        "--set", "train.epochs=3", "--set", "train.num_threads=1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    shopformer = next(r for r in document["results"] if r["model"] == "shopformer" and r["split"] == "test")
    assert shopformer["epochs"] == 3 and 0.0 <= shopformer["mrr@20"] <= shopformer["p@20"] <= 100.0
    assert "P@20" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "sessions"], "needs --test-cases"),
    (["--format", "s3rec", "--test-cases", "x.txt"], "--test-cases belongs to --format sessions"),
    (["--format", "sessions", "--test-cases", "{test}", "--models", "gru4rec"], "unknown session benchmark model"),
])
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    train_path, test_path = _write_sessions(tmp_path)
    args = [a.replace("{test}", str(test_path)) for a in args]
    result = runner.invoke(app, ["benchmark", "next-item", "--events", str(train_path), "--json", str(tmp_path / "o.json"), *args])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert message in result.output


def test_sessions_without_test_cases_are_refused(tmp_path):
    train_path, _ = _write_sessions(tmp_path)
    with pytest.raises(ConfigError, match="needs training sessions and test cases"):
        run_session_benchmark(read_dataset("sessions", train_path), models=("markov",))
