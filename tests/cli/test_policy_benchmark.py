"""`shopformer benchmark policy` from the command line: a missing folder is a clear error."""

from __future__ import annotations

from typer.testing import CliRunner

from shopformer.cli import app


def test_a_missing_dataset_folder_is_named_without_a_traceback(tmp_path):
    result = CliRunner().invoke(app, ["benchmark", "policy", "--obd", str(tmp_path / "nowhere"), "--campaign", "men",
                                      "--runs", "1", "--json", str(tmp_path / "out.json")])
    assert result.exit_code != 0 and "expected one <campaign>.csv" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.json").exists()
