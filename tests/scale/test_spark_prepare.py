"""`data prepare --engine spark` on a real local Spark: the local path's prepared dataset, row for row.

`make test` installs PySpark (the `spark` extra) and Java 17 (scripts/install-system-packages.sh);
elsewhere these tests skip without them, and in CI (`CI` set) they fail instead of skipping. One
Spark session serves the whole test run."""

from __future__ import annotations

import json
import os
import shutil

import polars as pl
import pytest
from typer.testing import CliRunner

from shopformer.cli import app
from shopformer.data.prepared import PrepareConfig, PreparedDataset
from shopformer.data.streaming import prepare_parquet
from shopformer.errors import DataError
from tests.data.streaming_cases import MIN_EVENTS, NOW, TIE_ITEMS, write_case

CONFIG = PrepareConfig(min_user_events=MIN_EVENTS, min_item_events=MIN_EVENTS)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the Spark preparation tests (make test installs what they need)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def spark():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        _unavailable("the Spark engine is the optional `spark` extra")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        _unavailable("Spark needs a Java runtime (openjdk-17-jre-headless)")
    from shopformer.scale.spark_session import spark_session

    # Two cores and the session's small shuffle: a local Spark that starts in seconds.
    with spark_session("local[2]") as session:
        yield session


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark-case")
    folder, _ = write_case(root)
    local = PreparedDataset.load(prepare_parquet(folder, root / "local", CONFIG, now=NOW).out)
    return root, folder, local


def test_spark_gives_the_local_prepared_dataset(spark, case):
    from shopformer.scale.spark_prepare import prepare_with_spark

    root, folder, local = case
    summary = prepare_with_spark(folder, root / "spark", CONFIG, now=NOW)
    on_spark = PreparedDataset.load(summary.out)
    assert local.differences(on_spark) == []
    assert on_spark.events.frame.filter(pl.col("user_id") == "u_tie")["item_id"].to_list() == TIE_ITEMS
    assert [s.step for s in on_spark.report] == ["sort", "dedupe", "min_count", "sessionize", "encode", "sequences"]
    spark_report = json.loads((root / "spark" / "ingest" / "ingest_report.json").read_text())
    assert spark_report == json.loads((root / "local" / "ingest" / "ingest_report.json").read_text())
    quarantined = pl.read_csv(root / "spark" / "ingest" / "quarantine" / "*.csv", infer_schema=False)
    assert sorted(quarantined["reason"]) == sorted(pl.read_csv(root / "local" / "ingest" / "quarantine.csv")["reason"])
    assert not any(p.name.endswith("-spark-events") for p in root.iterdir())  # the hand-over folder is removed


def test_the_cli_runs_the_spark_engine(spark, case, tmp_path):
    root, folder, _ = case
    out = tmp_path / "prepared"
    flags = ["--min-user-events", str(MIN_EVENTS), "--min-item-events", str(MIN_EVENTS)]
    result = CliRunner().invoke(app, ["data", "prepare", f"{folder}/*.parquet", "--engine", "spark", "--out", str(out), *flags])
    assert result.exit_code == 0, result.output
    local = CliRunner().invoke(app, ["data", "prepare", str(folder), "--out", str(tmp_path / "local"), *flags])
    assert local.exit_code == 0, local.output
    assert PreparedDataset.load(tmp_path / "local").differences(PreparedDataset.load(out)) == []


def test_spark_reports_a_missing_column(spark, case, tmp_path):
    from shopformer.scale.spark_prepare import prepare_with_spark

    _, folder, _ = case
    with pytest.raises(DataError, match="column 'visitor' is missing"):
        prepare_with_spark(folder, tmp_path / "out", stated={"user_col": "visitor"})
