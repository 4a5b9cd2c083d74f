"""The preparation pipeline: a `Dataset` in, a `PreparedDataset` (encoded, sequenced, savable) out.

Steps, in order: sort by user and time -> drop consecutive duplicates -> iterative k-core ->
sessionize -> fit the id encoders -> build compact sequences (-> align the catalog). Each step's
rows in/out and seconds are recorded, so a run can be explained and compared later.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
from pydantic import Field
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from shopformer.artifacts import read_header, write_header
from shopformer.config import FrozenConfig
from shopformer.data.prepare import (
    ConsecutiveDuplicatesFilter,
    LabelEncoder,
    MinCountFilter,
    Sessionizer,
    sort_by_user_time,
)
from shopformer.data.schema import CANONICAL_EVENT_TYPES, Catalog, Dataset, EventLog
from shopformer.data.sequences import SequenceArrays, Sequences

__all__ = ["PrepareConfig", "PreparedDataset", "StepRecorder", "StepReport", "align_catalog", "event_vocabulary",
           "prepare", "progress_display", "save_parts", "vocabulary_of"]

logger = logging.getLogger(__name__)

#: The prepared events' file in a saved dataset.
EVENTS_FILE = "events.parquet"


class PrepareConfig(FrozenConfig):
    """How to prepare a dataset. Unknown keys are an error, never silently ignored."""

    config_name: ClassVar[str] = "prepare"

    dedupe_consecutive: bool = True
    min_user_events: int = Field(default=1, ge=1)
    min_item_events: int = Field(default=1, ge=1)
    session_gap_seconds: int = Field(default=1800, ge=0)



@dataclass
class StepReport:
    """What one preparation step did."""

    step: str
    rows_in: int
    rows_out: int
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)


class StepRecorder:
    """Times steps, logs them and advances the progress display."""

    def __init__(self, progress: Progress | None, task_id: int | None) -> None:
        self.steps: list[StepReport] = []
        self._progress, self._task_id = progress, task_id

    def run(self, step: str, action: Callable[[], Any], rows_in: int) -> Any:
        if self._progress is not None:
            self._progress.update(self._task_id, description=step)
        started = time.perf_counter()
        result, rows_out, details = action()
        report = StepReport(step, rows_in, rows_out, round(time.perf_counter() - started, 4), details)
        self.steps.append(report)
        logger.info("prepare %s: %d -> %d rows in %.2fs %s", step, rows_in, rows_out, report.seconds, details)
        if self._progress is not None:
            self._progress.advance(self._task_id)
        return result


def event_vocabulary(log: EventLog) -> LabelEncoder:
    """Canonical event types first (stable codes across datasets), then this log's own, sorted."""
    return vocabulary_of(log.frame["event_type"].drop_nulls().unique().to_list())


def vocabulary_of(event_types: Iterable[str]) -> LabelEncoder:
    """`event_vocabulary` of a log with these event types."""
    extra = sorted(set(event_types) - set(CANONICAL_EVENT_TYPES))
    return LabelEncoder.from_classes([*CANONICAL_EVENT_TYPES, *extra])


def align_catalog(catalog: Catalog | None, item_encoder: LabelEncoder) -> Catalog | None:
    """Catalog rows of the kept items, in item-code order; items without a catalog row stay absent."""
    if catalog is None:
        return None
    frame = catalog.frame.filter(pl.col("item_id").is_in(item_encoder.classes_.implode()))
    order = item_encoder.transform(frame["item_id"]).argsort(kind="stable")
    return Catalog(frame[order])


@dataclass
class PreparedDataset:
    """Everything later stages need: cleaned events, encoders, sequences, and how they were made."""

    name: str
    events: EventLog
    catalog: Catalog | None
    users: pl.DataFrame | None
    user_encoder: LabelEncoder
    item_encoder: LabelEncoder
    event_vocab: LabelEncoder
    sequences: Sequences
    report: list[StepReport]
    config: PrepareConfig

    def arrays(self) -> SequenceArrays:
        """The users' sequences as model input arrays; timestamps only when they are real times."""
        return self.sequences.arrays(with_times=self.events.time_resolution != "order")

    def for_users(self, rows: np.ndarray) -> PreparedDataset:
        """The same dataset restricted to the users of sequence `rows`: encoders and catalog (the item
        space) unchanged, so models of different user groups share their item codes."""
        sequences = self.sequences.select(rows)
        ids = self.user_encoder.inverse_transform(sequences.users)
        events = EventLog(self.events.frame.filter(pl.col("user_id").is_in(ids.implode())), self.events.time_resolution)
        users = None if self.users is None else self.users.filter(pl.col("user_id").is_in(ids.implode()))
        return dataclasses.replace(self, events=events, users=users, sequences=sequences)

    def save(self, directory: str | Path) -> Path:
        """Writes Parquet, JSON and .npz files into `directory` (created if needed); no pickle."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.events.frame.write_parquet(directory / EVENTS_FILE)
        save_parts(directory, self.name, self.events.time_resolution, catalog=self.catalog, users=self.users,
                   encoders=(self.user_encoder, self.item_encoder, self.event_vocab), sequences=self.sequences,
                   report=self.report, config=self.config)
        return directory

    def differences(self, other: PreparedDataset) -> list[str]:
        """The parts in which `other` holds different data (none: the same prepared dataset); the
        report is compared without its timings."""
        def same_frame(a: pl.DataFrame | None, b: pl.DataFrame | None) -> bool:
            return (a is None and b is None) or (a is not None and b is not None and a.equals(b))

        def steps(report: list[StepReport]) -> list[tuple]:
            return [(s.step, s.rows_in, s.rows_out, s.details) for s in report]

        same = {
            "name": self.name == other.name,
            "events": self.events.time_resolution == other.events.time_resolution
            and same_frame(self.events.frame, other.events.frame),
            "catalog": same_frame(*(None if d.catalog is None else d.catalog.frame for d in (self, other))),
            "users": same_frame(self.users, other.users),
            "encoders": all(a.classes.equals(b.classes) for a, b in zip(
                (self.user_encoder, self.item_encoder, self.event_vocab), (other.user_encoder, other.item_encoder, other.event_vocab))),
            "sequences": self.sequences.equals(other.sequences),
            "report": steps(self.report) == steps(other.report),
            "config": self.config == other.config,
        }
        return [part for part, equal in same.items() if not equal]

    @classmethod
    def load(cls, directory: str | Path) -> PreparedDataset:
        """Restores a dataset written by `save`."""
        directory = Path(directory)
        meta = read_header(directory / "prepared.json", "prepared_dataset", what="prepared dataset")
        catalog = Catalog(pl.read_parquet(directory / "catalog.parquet")) if meta["has_catalog"] else None
        return cls(
            name=meta["name"],
            events=EventLog(pl.read_parquet(directory / EVENTS_FILE), meta["time_resolution"]),
            catalog=catalog,
            users=pl.read_parquet(directory / "users.parquet") if meta["has_users"] else None,
            user_encoder=LabelEncoder.load(directory / "user_encoder.json"),
            item_encoder=LabelEncoder.load(directory / "item_encoder.json"),
            event_vocab=LabelEncoder.load(directory / "event_types.json"),
            sequences=Sequences.load(directory / "sequences.npz"),
            report=[StepReport(**step) for step in _read_json(directory / "report.json")],
            config=PrepareConfig.from_dict(_read_json(directory / "config.json")),
        )


def save_parts(directory: Path, name: str, time_resolution: str, *, catalog: Catalog | None, users: pl.DataFrame | None,
               encoders: tuple[LabelEncoder, LabelEncoder, LabelEncoder], sequences: Sequences,
               report: list[StepReport], config: PrepareConfig) -> None:
    """Everything of a saved prepared dataset but `EVENTS_FILE`, which its writer streams itself."""
    if catalog is not None:
        catalog.frame.write_parquet(directory / "catalog.parquet")
    if users is not None:
        users.write_parquet(directory / "users.parquet")
    for encoder, file in zip(encoders, ("user_encoder.json", "item_encoder.json", "event_types.json")):
        encoder.save(directory / file)
    sequences.save(directory / "sequences.npz")
    _write_json(directory / "config.json", config.model_dump(mode="json"))
    _write_json(directory / "report.json", [asdict(step) for step in report])
    write_header(directory / "prepared.json", "prepared_dataset", indent=2, name=name, time_resolution=time_resolution,
                 has_catalog=catalog is not None, has_users=users is not None)


def _write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def progress_display(progress: bool) -> Progress:
    """The per-step progress bar of a preparation (`progress=False`: a silent one)."""
    return Progress(
        TextColumn("prepare {task.description:<12}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), disable=not progress,
    )


def prepare(dataset: Dataset, config: PrepareConfig | None = None, progress: bool = False) -> PreparedDataset:
    """Cleans, sessionizes and encodes a dataset; `progress=True` shows a progress bar per step."""
    config = config or PrepareConfig()
    display = progress_display(progress)
    with display:
        task_id = display.add_task("start", total=7 if dataset.catalog is not None else 6)
        return _run_pipeline(dataset, config, StepRecorder(display, task_id))


def _run_pipeline(dataset: Dataset, config: PrepareConfig, steps: StepRecorder) -> PreparedDataset:
    log = dataset.events
    log = steps.run("sort", lambda: _rows(sort_by_user_time(log)), len(log))
    if config.dedupe_consecutive:
        log = steps.run("dedupe", lambda: _filtered(ConsecutiveDuplicatesFilter(), log), len(log))
    kcore = MinCountFilter(config.min_user_events, config.min_item_events)
    log = steps.run("min_count", lambda: _filtered(kcore, log, iterations=True), len(log))
    sessionizer = Sessionizer(config.session_gap_seconds)
    log = steps.run("sessionize", lambda: _sessionized(sessionizer, log), len(log))
    encoders = steps.run("encode", lambda: _fit_encoders(log), len(log))
    sequences = steps.run("sequences", lambda: _rows(Sequences.from_log(log, *encoders), len(log)), len(log))
    catalog = dataset.catalog
    if catalog is not None:
        catalog = steps.run("catalog", lambda: _rows(align_catalog(catalog, encoders[1])), len(catalog))
    users = dataset.users
    if users is not None and "user_id" in users.columns:
        users = users.filter(pl.col("user_id").is_in(encoders[0].classes_.implode()))
    return PreparedDataset(
        dataset.name, log, catalog, users, *encoders, sequences=sequences, report=steps.steps, config=config
    )


def _rows(result: Any, rows_out: int | None = None) -> tuple[Any, int, dict]:
    return result, len(result) if rows_out is None else rows_out, {}


def _filtered(step: ConsecutiveDuplicatesFilter | MinCountFilter, log: EventLog, iterations: bool = False):
    kept = step.apply(log)
    details = {"removed": step.removed_}
    if iterations:
        details["iterations"] = step.iterations_
    return kept, len(kept), details


def _sessionized(sessionizer: Sessionizer, log: EventLog):
    sessionized = sessionizer.apply(log)
    return sessionized, len(sessionized), {"sessions": sessionizer.n_sessions_}


def _fit_encoders(log: EventLog):
    frame = log.frame
    encoders = (LabelEncoder().fit(frame["user_id"]), LabelEncoder().fit(frame["item_id"]), event_vocabulary(log))
    details = {"users": len(encoders[0].classes_), "items": len(encoders[1].classes_),
               "event_types": len(encoders[2].classes_)}
    return encoders, len(log), details
