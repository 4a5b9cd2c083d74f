"""`shopformer benchmark sessions` end to end on a small table, and its one-line errors."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from shopformer.cli.sessions_benchmark import EXAMPLES, sessions_benchmark
from tests.data.session_cases import write_session_table

runner = CliRunner()
app = typer.Typer()
app.command("sessions", epilog=EXAMPLES)(sessions_benchmark)
app.callback()(lambda: None)  # a group, so `sessions` stays a named subcommand as under `shopformer benchmark`


def test_benchmark_sessions_writes_the_json(tmp_path):
    table, out = write_session_table(tmp_path / "sessions.csv"), tmp_path / "out.json"
    result = runner.invoke(app, ["sessions", "--table", str(table), "--label", "Revenue", "--categorical", "Browser",
                                 "--models", "lightgbm", "--resamples", "20", "--json", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "published MLP" in result.output
    document = json.loads(out.read_text())
    assert [r["model"] for r in document["results"]] == ["lightgbm", "lightgbm"]


def _one_line_error(args, text):
    result = runner.invoke(app, ["sessions", *args])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert text in result.output


def test_bad_tables_are_one_line_errors(tmp_path):
    table, out = str(write_session_table(tmp_path / "sessions.csv")), str(tmp_path / "out.json")
    _one_line_error(["--table", table, "--label", "Bought", "--json", out], "no label column 'Bought'")
    _one_line_error(["--table", table, "--label", "Month", "--json", out], "the label is not a yes/no value")
    _one_line_error(["--table", table, "--label", "Revenue", "--models", "svm", "--json", out], "unknown session-table model")
