"""Preparation beyond memory: Parquet files in, a saved prepared dataset out, holding only integer codes.

`prepare_parquet` gives the same prepared dataset as `ingest_files` + `prepare` + `save` on the same
rows, by running the same steps (`sort_frame_by_user_time`, `ConsecutiveDuplicatesFilter`,
`MinCountFilter`, `Sessionizer`) on the narrow code frame of `scan.encode_events`: codes taken from
the sorted ids keep both their equality and their order. Ids become strings again only when the
events are written, a chunk at a time. At 100M events the working set is the code frame and the
sequence arrays (~2 GiB each) rather than ~7 GiB of string columns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from shopformer.data.codes import FIRST_CODE, UNKNOWN_CODE
from shopformer.data.mapping import EventMapping
from shopformer.data.prepare import ConsecutiveDuplicatesFilter, LabelEncoder, MinCountFilter, Sessionizer, sort_frame_by_user_time
from shopformer.data.prepared import (
    EVENTS_FILE,
    PrepareConfig,
    StepRecorder,
    StepReport,
    align_catalog,
    progress_display,
    save_parts,
    vocabulary_of,
)
from shopformer.data.scan import (
    EncodedEvents,
    ScanPlan,
    encode_events,
    reason_code,
    scan_parquet_events,
    split_quarantine,
    write_scan_report,
)
from shopformer.data.schema import Catalog
from shopformer.data.sequences import Sequences

__all__ = ["PreparedSummary", "dataset_name", "prepare_parquet", "save_encoded"]

#: Events decoded back to strings and written per row group.
WRITE_CHUNK = 2_000_000


@dataclass(frozen=True)
class PreparedSummary:
    """What a streaming preparation wrote: where, its steps, and the counts of the result."""

    out: Path
    name: str
    report: list[StepReport]
    events: int
    users: int
    items: int
    rows_read: int
    quarantined: dict[str, int]
    #: The column mapping used (stated or guessed), to be saved with the dataset.
    mapping: EventMapping


def dataset_name(source: str | Path) -> str:
    """The name of the dataset in a file (its stem, as `ingest_files` names it), a folder (its name) or
    a glob (the name of the folder above the first pattern)."""
    path = Path(source)
    if not any(c in str(path) for c in "*?["):
        return path.stem if path.is_file() else path.name
    while any(c in str(path) for c in "*?["):
        path = path.parent
    return path.name or "events"


def prepare_parquet(source: str | Path, out: str | Path, config: PrepareConfig | None = None, *, stated: dict | None = None,
                    catalog: Catalog | None = None, name: str | None = None, progress: bool = False,
                    now: int | None = None) -> PreparedSummary:
    """Validates, cleans, sessionizes and encodes the events of a Parquet folder, glob or file into the
    prepared dataset folder `out` (plus `out/ingest/`), streaming the input and the written events.

    `stated` holds the event-mapping fields the user gave (the rest is guessed from the column names).
    """
    config, out = config or PrepareConfig(), Path(out)
    plan, canonical = scan_parquet_events(source, stated, now)
    numbers = [pl.col(f) for f in plan.numeric_fields]
    display = progress_display(progress)
    with display:
        task = display.add_task("scan", total=7 if catalog is not None else 6)
        encoded = encode_events(canonical, vocabulary_of(plan.event_types()).classes.to_list(), str(source), *numbers, reason_code())
        rows_read = encoded.frame.height
        frame, positions, reasons = split_quarantine(encoded.frame)
        encoded = replace(encoded, frame=frame.clear())  # keeps the vocabularies, lets the unfiltered rows go
        quarantined = write_scan_report(out / "ingest", str(source), plan, rows_read, positions, reasons)
        steps = StepRecorder(display, task)
        frame = steps.run("sort", lambda: _rows(sort_frame_by_user_time(frame)), frame.height)
        if config.dedupe_consecutive:
            dedupe = ConsecutiveDuplicatesFilter()
            frame = steps.run("dedupe", lambda: _filtered(dedupe, frame), frame.height)
        kcore = MinCountFilter(config.min_user_events, config.min_item_events)
        frame = steps.run("min_count", lambda: _filtered(kcore, frame, iterations=True), frame.height)
        sessionizer = Sessionizer(config.session_gap_seconds)
        frame = steps.run("sessionize", lambda: _sessionized(sessionizer, frame, plan.time_resolution), frame.height)
        return save_encoded(frame, encoded, out, steps, plan=plan, name=name or dataset_name(source), catalog=catalog,
                            config=config, ingested=(rows_read, quarantined))


def _rows(frame: pl.DataFrame) -> tuple[pl.DataFrame, int, dict]:
    return frame, frame.height, {}


def _filtered(step: ConsecutiveDuplicatesFilter | MinCountFilter, frame: pl.DataFrame, iterations: bool = False):
    kept = step.filter_frame(frame)
    details = {"removed": step.removed_}
    if iterations:
        details["iterations"] = step.iterations_
    return kept, kept.height, details


def _sessionized(sessionizer: Sessionizer, frame: pl.DataFrame, time_resolution: str):
    numbers = sessionizer.session_numbers(frame, time_resolution).cast(pl.Int32)
    return frame.with_columns(numbers.alias("session")), frame.height, {"sessions": sessionizer.n_sessions_}


def _recode(codes: np.ndarray, n_codes: int) -> tuple[np.ndarray, np.ndarray]:
    """The known codes present in `codes` and a table mapping each old code to its dense new one."""
    present = np.flatnonzero(np.bincount(codes, minlength=n_codes))
    present = present[present >= FIRST_CODE]
    table = np.full(n_codes, UNKNOWN_CODE, dtype=np.int32)
    table[present] = np.arange(FIRST_CODE, FIRST_CODE + len(present), dtype=np.int32)
    return present, table


def _fit_encoders(frame: pl.DataFrame, encoded: EncodedEvents):
    """Encoders of the kept rows (as `LabelEncoder.fit` on their ids gives them) and the rows' new codes."""
    codes = {}
    encoders = []
    for column, classes in (("user_id", encoded.users), ("item_id", encoded.items)):
        present, table = _recode(frame[column].to_numpy(), len(classes) + FIRST_CODE)
        encoders.append(LabelEncoder().fit(classes.gather(present - FIRST_CODE)))
        codes[column] = table[frame[column].to_numpy()]
    present, _ = _recode(frame["event_type"].to_numpy().astype(np.int64), len(encoded.event_types) + FIRST_CODE)
    vocabulary = vocabulary_of(encoded.event_types[code - FIRST_CODE] for code in present)
    table = np.full(len(encoded.event_types) + FIRST_CODE, UNKNOWN_CODE, dtype=np.int8)
    table[present] = vocabulary.transform([encoded.event_types[code - FIRST_CODE] for code in present])
    codes["event_type"] = table[frame["event_type"].to_numpy()]
    encoders.append(vocabulary)
    details = {"users": len(encoders[0].classes), "items": len(encoders[1].classes), "event_types": len(vocabulary.classes)}
    return (tuple(encoders), codes), frame.height, details


def save_encoded(frame: pl.DataFrame, encoded: EncodedEvents, out: Path, steps: StepRecorder, *, plan: ScanPlan, name: str,
                 catalog: Catalog | None, config: PrepareConfig, ingested: tuple[int, dict[str, int]]) -> PreparedSummary:
    """The last steps (encode, sequences, catalog) on cleaned code rows sorted by user and time with a
    `session` number, and the prepared dataset written to `out`; `ingested` is (rows read, quarantine counts)."""
    encoders, codes = steps.run("encode", lambda: _fit_encoders(frame, encoded), frame.height)
    timestamps = frame["timestamp"].to_numpy()
    vocabulary = tuple(encoders[2].classes.to_list())
    sequences = steps.run("sequences", lambda: (Sequences.from_codes(
        codes["user_id"], codes["item_id"], codes["event_type"], timestamps, vocabulary), frame.height, {}), frame.height)
    if catalog is not None:
        catalog = steps.run("catalog", lambda: _rows_of(align_catalog(catalog, encoders[1])), len(catalog))
    out.mkdir(parents=True, exist_ok=True)
    _write_events(out / EVENTS_FILE, frame, codes, encoders, plan.event_columns())
    save_parts(out, name, plan.time_resolution, catalog=catalog, users=None, encoders=encoders, sequences=sequences,
               report=steps.steps, config=config)
    return PreparedSummary(out, name, steps.steps, frame.height, len(encoders[0].classes), len(encoders[1].classes),
                           *ingested, plan.mapping)


def _rows_of(catalog: Catalog) -> tuple[Catalog, int, dict]:
    return catalog, len(catalog), {}


def _write_events(path: Path, frame: pl.DataFrame, codes: dict[str, np.ndarray], encoders, columns: list[str]) -> None:
    """The events as the in-memory path saves them (string ids, `session_id` = "<user_id>:<n>"), decoded
    and written `WRITE_CHUNK` rows at a time."""
    writer = None
    try:
        for start in range(0, max(frame.height, 1), WRITE_CHUNK):
            part = frame.slice(start, WRITE_CHUNK)
            window = slice(start, start + part.height)
            decoded = part.with_columns(
                user_id=encoders[0].inverse_transform(codes["user_id"][window]),
                item_id=encoders[1].inverse_transform(codes["item_id"][window]),
                event_type=encoders[2].inverse_transform(codes["event_type"][window]),
            ).with_columns(session_id=pl.format("{}:{}", "user_id", "session")).select(columns)
            table = decoded.to_arrow()
            writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
