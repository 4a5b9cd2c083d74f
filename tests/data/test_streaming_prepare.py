"""Streaming preparation over Parquet parts gives the in-memory path's prepared dataset, row for row."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from shopformer.cli import app
from shopformer.data.ingest import ingest_files
from shopformer.data.prepared import PrepareConfig, PreparedDataset, prepare, vocabulary_of
from shopformer.data.scan import encode_events, parquet_files, scan_parquet_events
from shopformer.data.streaming import dataset_name, prepare_parquet
from shopformer.errors import DataError
from tests.data.streaming_cases import MIN_EVENTS, NOW, TIE_ITEMS, write_case

CONFIG = PrepareConfig(min_user_events=MIN_EVENTS, min_item_events=MIN_EVENTS)


def in_memory(single_file, out, stated=None):
    ingested = ingest_files(single_file, stated=stated, now=NOW)
    ingested.result.write_report(out / "ingest")
    return prepare(ingested.dataset, CONFIG).save(out)


def quarantine_rows(out) -> list[tuple]:
    return pl.read_csv(out / "ingest" / "quarantine.csv", infer_schema=False).select("__row__", "reason").rows()


@pytest.mark.parametrize("time_kind", ["unix_s", "unix_ms", "iso", "datetime"])
def test_streaming_gives_the_in_memory_prepared_dataset(tmp_path, time_kind):
    folder, single = write_case(tmp_path, time_kind)
    expected = PreparedDataset.load(in_memory(single, tmp_path / "memory"))
    summary = prepare_parquet(folder, tmp_path / "streamed", CONFIG, now=NOW)
    streamed = PreparedDataset.load(summary.out)
    assert expected.differences(streamed) == []
    # The case is not trivial: every step had work to do, and the kept columns carry the numbers.
    steps = {s.step: s for s in streamed.report}
    assert steps["dedupe"].details["removed"] > 0 and steps["min_count"].details["iterations"] >= 1
    assert {"value", "quantity", "session_id"} <= set(streamed.events.frame.columns)
    assert streamed.events.frame["item_id"].null_count() == MIN_EVENTS  # the searches
    report = json.loads((summary.out / "ingest" / "ingest_report.json").read_text())
    assert report == json.loads((tmp_path / "memory" / "ingest" / "ingest_report.json").read_text()) | {"source": str(folder)}
    assert summary.rows_read == report["rows_read"] and summary.quarantined == report["quarantined"]
    assert quarantine_rows(summary.out) == quarantine_rows(tmp_path / "memory")


def test_ties_keep_the_input_order(tmp_path):
    folder, _ = write_case(tmp_path)
    streamed = PreparedDataset.load(prepare_parquet(folder, tmp_path / "out", CONFIG, now=NOW).out)
    tie = streamed.events.frame.filter(pl.col("user_id") == "u_tie")
    assert tie["item_id"].to_list() == TIE_ITEMS


def test_the_scan_holds_only_integer_codes(tmp_path):
    folder, _ = write_case(tmp_path)
    plan, canonical = scan_parquet_events(folder, now=NOW)
    encoded = encode_events(canonical, vocabulary_of(plan.event_types()).classes.to_list(), str(folder))
    assert encoded.frame.schema == pl.Schema(
        {"user_id": pl.Int32, "item_id": pl.Int32, "timestamp": pl.Int64, "event_type": pl.Int8})
    assert encoded.users.is_sorted() and encoded.users.dtype == pl.String


def test_the_cli_streams_a_folder_and_gives_the_in_memory_result(tmp_path):
    folder, single = write_case(tmp_path)
    runner = CliRunner()
    flags = ["--min-user-events", str(MIN_EVENTS), "--min-item-events", str(MIN_EVENTS)]
    streamed = runner.invoke(app, ["data", "prepare", str(folder), "--out", str(tmp_path / "streamed"), *flags])
    assert streamed.exit_code == 0, streamed.output
    assert "rows read" in streamed.output and (tmp_path / "streamed" / "ingest_config.yaml").is_file()
    one_file = runner.invoke(app, ["data", "prepare", str(single), "--streaming", "--out", str(tmp_path / "one"), *flags])
    assert one_file.exit_code == 0, one_file.output
    memory = runner.invoke(app, ["data", "prepare", str(single), "--out", str(tmp_path / "memory"), *flags])
    assert memory.exit_code == 0, memory.output
    memory, *streamed = [PreparedDataset.load(tmp_path / name) for name in ("memory", "streamed", "one")]
    # A folder is named like the file: events/ and events.parquet both give "events".
    assert [memory.differences(other) for other in streamed] == [[], []] and memory.name == "events"


def test_a_folder_without_parquet_files_is_a_clear_error(tmp_path):
    (tmp_path / "_SUCCESS").write_text("")
    with pytest.raises(DataError, match="holds no Parquet files"):
        parquet_files(tmp_path)
    with pytest.raises(DataError, match="not found"):
        parquet_files(tmp_path / "absent")


def test_a_missing_column_names_it(tmp_path):
    folder, _ = write_case(tmp_path)
    with pytest.raises(DataError, match="column 'visitor' is missing"):
        prepare_parquet(folder, tmp_path / "out", stated={"user_col": "visitor"})


def test_a_text_field_is_refused_with_the_way_out(tmp_path):
    folder, _ = write_case(tmp_path)
    with pytest.raises(DataError, match="narrow columns.*query_col: null"):
        prepare_parquet(folder, tmp_path / "out", stated={"query_col": "price"})


def test_files_of_different_columns_are_a_clear_error(tmp_path):
    folder, _ = write_case(tmp_path)
    pl.DataFrame({"user_id": ["a"], "other": [1]}).write_parquet(folder / "part-99999.parquet")
    with pytest.raises(DataError, match="cannot be read as Parquet"):
        prepare_parquet(folder, tmp_path / "out")


def test_a_damaged_file_is_a_clear_error(tmp_path):
    folder, _ = write_case(tmp_path)
    (folder / "part-99999.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="cannot be read as Parquet"):
        prepare_parquet(folder, tmp_path / "out")


def test_the_cli_refuses_in_memory_only_options_on_a_folder(tmp_path):
    folder, _ = write_case(tmp_path)
    tombstones = tmp_path / "forgotten.jsonl"
    tombstones.write_text("")
    result = CliRunner().invoke(app, ["data", "prepare", str(folder), "--tombstones", str(tombstones), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "need the in-memory path" in result.output


def test_dataset_names_follow_the_source(tmp_path):
    folder, single = write_case(tmp_path)
    assert [dataset_name(p) for p in (folder, single, f"{folder}/*.parquet", f"{tmp_path}/ev*/part-*.parquet")] == [
        "events", "events", "events", tmp_path.name]
