"""A small event log with every case the preparation paths must agree on, written as Parquet parts
and as one file: events at the same time (ties), reloads, a k-core that needs passes, searches without
an item, event-type synonyms, numbers, and rows of each quarantine reason the scan can meet."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from shopformer.data.synth.events import SyntheticEvents

#: "Now" for both paths, so that the future-time check gives the same answer.
NOW = 1_800_000_000
T0 = 1_705_000_000
MIN_EVENTS = 3
#: u_tie's items, three at one second and three at the next.
TIE_ITEMS = ["i3", "i1", "i2", "i1", "i3", "i2"]


def _hand_rows() -> pl.DataFrame:
    rows = [
        # Ties: one user's events at the same second keep their input order, which is not the items' order.
        *[("u_tie", item, T0 + 10 * (k // 3), "view", 1.0, 1.0) for k, item in enumerate(TIE_ITEMS)],
        # Searches have no item; the missing item is one group for the k-core.
        ("u_search", None, T0, "search", None, None),
        ("u_search", "i1", T0 + 50, "pv", 2.5, None),  # a synonym of view
        ("u_search", None, T0 + 55, "search", None, None),
        ("u_search", "i2", T0 + 60, "add_to_cart", 2.5, 2.0),
        # A reload of the same item and type: dropped as a consecutive duplicate.
        ("u_search", "i2", T0 + 61, "add_to_cart", 2.5, 2.0),
        ("u_search", None, T0 + 9000, "search", None, None),
        # A chain the k-core removes in passes: u_chain's only item i_rare is below the threshold.
        ("u_chain", "i_rare", T0, "view", None, None), ("u_chain", "i_rare", T0 + 5000, "view", None, None),
        # One row per quarantine reason.
        (None, "i1", T0, "view", None, None),
        ("u_bad", "i1", 12_345, "view", None, None),
        ("u_bad", "i1", 500_000_000, "view", None, None),
        ("u_bad", "i1", NOW + 10 * 86_400, "view", None, None),
        ("u_bad", "i1", None, "view", None, None),
        ("u_bad", "i1", T0, "hover", None, None),
        ("u_bad", "i1", T0, "view", None, -1.0),
    ]
    schema = {"user_id": pl.String, "item_id": pl.String, "timestamp": pl.Int64, "event_type": pl.String,
              "price": pl.Float64, "quantity": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def case_frame(time_kind: str = "unix_s") -> pl.DataFrame:
    """The log's rows; `time_kind` says how times are written: unix_s or unix_ms integers, ISO-8601
    text or a native Datetime column."""
    generated = SyntheticEvents(3000, seed=3, users=60, items=40, chunk_events=1000).frame()
    generated = generated.with_columns(price=(pl.int_range(pl.len()) % 7).cast(pl.Float64), quantity=pl.lit(1.0))
    frame = pl.concat([generated, _hand_rows()])
    seconds = pl.col("timestamp")
    if time_kind == "unix_ms":
        return frame.with_columns(seconds * 1000)
    if time_kind == "iso":
        as_text = seconds.map_elements(lambda s: datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), return_dtype=pl.String)
        return frame.with_columns(as_text)
    if time_kind == "datetime":
        return frame.with_columns(pl.from_epoch(seconds, "s").dt.replace_time_zone("UTC"))
    return frame


def write_case(root: Path, time_kind: str = "unix_s", parts: int = 3) -> tuple[Path, Path]:
    """The log as `root/events/part-*.parquet` and as `root/events.parquet`; returns both paths."""
    frame = case_frame(time_kind)
    folder = root / "events"
    folder.mkdir(parents=True)
    size = -(-frame.height // parts)
    for number in range(parts):
        frame.slice(number * size, size).write_parquet(folder / f"part-{number:05d}.parquet")
    frame.write_parquet(root / "events.parquet")
    return folder, root / "events.parquet"
