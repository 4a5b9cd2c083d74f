"""`shopformer benchmark privacy` from the command line: a small DP table, and clear errors."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from shopformer.cli import app

runner = CliRunner()


def _sequences(path):
    rng = np.random.default_rng(0)
    lines = []
    for user in range(150):
        start, length = int(rng.integers(1, 40)), int(rng.integers(4, 10))
        lines.append(" ".join([str(user + 1), *(str(1 + (start + k) % 40) for k in range(length))]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_small_dp_table_is_written(tmp_path):
    out = tmp_path / "dp.json"
    result = runner.invoke(app, ["benchmark", "privacy", "--part", "dp", "--events", str(_sequences(tmp_path / "shop.txt")),
                                 "--json", str(out), "--epsilons", "8", "--dp-epochs", "1", "--dp-users-per-step", "50",
                                 "--set", "model.dim=16", "--set", "model.layers=1", "--set", "train.epochs=1",
                                 "--set", "train.num_threads=1"])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["dp_table"]
    assert [row["epsilon"] for row in rows] == [None, 8.0] and rows[1]["epochs"] == 1


def test_bad_epsilons_and_parts_are_named(tmp_path):
    events = str(_sequences(tmp_path / "shop.txt"))
    for option, value, message in (("--epsilons", "eight", "--epsilons must be"), ("--part", "all", "--part must be one of")):
        result = runner.invoke(app, ["benchmark", "privacy", "--events", events, "--json", str(tmp_path / "x.json"), option, value])
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
