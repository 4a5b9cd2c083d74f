"""The demo shop: a deterministic synthetic online shop, exported the way a real shop would.

`generate_demo_shop` writes raw files (ISO-8601 times, everyday event names such as "page_view" and
"add_to_cart", a few deliberately malformed rows) that go through the normal ingestion path, plus the
ground truth the simulation used, so tasks can be scored against what is actually knowable:

    out_dir/events.csv                  event_id, session_id, user_id, item_id, timestamp, event_type,
                                        quantity, price, query, rating
    out_dir/catalog.csv                 item_id, title, description, category, brand, price
    out_dir/ground_truth/users.csv      segment, price sensitivity, tastes, churn, bot and fraud flags
    out_dir/ground_truth/sessions.csv   true purchase probability of each session and its outcome
    out_dir/ground_truth/malformed.csv  event_id and kind of every malformed row injected
    out_dir/ground_truth/meta.json      config, counts, malformed rows per kind

The same config (seed included) always gives byte-identical files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
from pydantic import Field

from shopformer.config import FrozenConfig
from shopformer.data.mapping import EventMapping
from shopformer.data.synth.actors import simulate_bots, simulate_fraud
from shopformer.data.synth.catalog import DemoCatalog, build_catalog
from shopformer.data.synth.sessions import (
    CART,
    PURCHASE,
    REVIEW,
    SEARCH,
    VIEW,
    WISHLIST,
    simulate_browsing,
)
from shopformer.data.synth.users import DAY, ActivityRhythm, DemoUsers, draw_users

#: Kinds of malformed rows injected, in the order they are drawn.
MALFORMED_KINDS = ("missing_user_id", "unparsable_timestamp", "unknown_event_type", "negative_quantity")
_BAD_TIMESTAMPS = ("2024-02-30T25:61:00Z", "not a date", "31/02/2024 10:00")
#: Event names no shop vocabulary maps to a known event type.
UNKNOWN_EVENT_NAMES = ("hover", "share_link", "compare_items")
#: Purchases not preceded by a view of the item in the same session, and why.
FUNNEL_EXCEPTIONS = (
    "re-orders of consumables are bought from the order history: add_to_cart and purchase, no page_view",
)
_TIE_ORDER = {REVIEW: 0, SEARCH: 1, VIEW: 2, WISHLIST: 3, CART: 4, PURCHASE: 5}
_ISO = "%Y-%m-%dT%H:%M:%SZ"


class DemoShopConfig(FrozenConfig):
    """Size and behaviour of the demo shop; unknown keys are an error."""


    seed: int = 0
    n_users: int = Field(2000, ge=20)
    #: At least one item per leaf category (22 leaves).
    n_items: int = Field(800, ge=30)
    days: int = Field(60, ge=7)
    start: date = date(2024, 3, 4)
    #: Share of users that sign up during the window (the others are existing customers).
    new_user_fraction: float = Field(0.4, ge=0, le=1)
    churner_fraction: float = Field(0.2, ge=0, le=1)
    bot_fraction: float = Field(0.005, ge=0, le=0.2)
    fraudster_fraction: float = Field(0.005, ge=0, le=0.2)
    #: Exponent of the Zipf law of item exposure.
    zipf_exponent: float = Field(0.9, gt=0)
    #: Malformed rows injected, as a share of clean events, split evenly over `MALFORMED_KINDS`.
    malformed_fraction: float = Field(0.002, ge=0, le=0.1)


@dataclass(frozen=True)
class DemoShopFiles:
    """Where `generate_demo_shop` wrote each file."""

    root: Path
    events: Path
    catalog: Path
    users: Path
    sessions: Path
    malformed: Path
    meta: Path

    @classmethod
    def under(cls, root: str | Path) -> DemoShopFiles:
        root = Path(root)
        truth = root / "ground_truth"
        return cls(root, root / "events.csv", root / "catalog.csv", truth / "users.csv",
                   truth / "sessions.csv", truth / "malformed.csv", truth / "meta.json")

    @staticmethod
    def event_mapping() -> EventMapping:
        """How events.csv maps onto the event contract."""
        return EventMapping(
            event_id_col="event_id", session_col="session_id", quantity_col="quantity",
            value_col="price", query_col="query", rating_col="rating", time_format="iso8601",
        )


def _population(config: DemoShopConfig) -> tuple[np.random.Generator, tuple[int, int], DemoCatalog, DemoUsers]:
    rng = np.random.default_rng(config.seed)
    window_start = int(datetime.combine(config.start, datetime.min.time(), UTC).timestamp())
    window = (window_start, window_start + config.days * DAY)
    catalog = build_catalog(rng, config.n_items, config.zipf_exponent)
    users = draw_users(rng, config.n_users, window, config.new_user_fraction, config.churner_fraction,
                       config.bot_fraction, config.fraudster_fraction)
    return rng, window, catalog, users


def demo_population(config: DemoShopConfig | None = None) -> tuple[DemoCatalog, DemoUsers]:
    """The items and customers (with their hidden traits) of the shop `generate_demo_shop(config)` writes:
    item `i` is `catalog.frame["item_id"][i]`, user `u` is the shop's `u{u + 1:05d}`."""
    _, _, catalog, users = _population(config or DemoShopConfig())
    return catalog, users


def generate_demo_shop(out_dir: str | Path, config: DemoShopConfig | None = None) -> DemoShopFiles:
    """Simulate the demo shop and write its raw exports and ground truth under `out_dir`."""
    config = config or DemoShopConfig()
    rng, window, catalog, users = _population(config)
    rhythm = ActivityRhythm(window[0], config.days, config.start.weekday())
    parts = [simulate_browsing(rng, users, catalog, rhythm), simulate_bots(rng, users, catalog),
             simulate_fraud(rng, users, catalog)]
    sessions, events = _number_sessions(parts)

    user_ids = [f"u{i + 1:05d}" for i in range(len(users))]
    clean = _export_events(events, sessions, catalog.frame, user_ids)
    table, malformed = inject_malformed(rng, clean, config.malformed_fraction)

    files = DemoShopFiles.under(out_dir)
    files.users.parent.mkdir(parents=True, exist_ok=True)
    table.write_csv(files.events)
    catalog.frame.write_csv(files.catalog)
    users.ground_truth(user_ids).write_csv(files.users)
    _export_sessions(sessions, events, user_ids).write_csv(files.sessions)
    malformed.write_csv(files.malformed)
    meta = _meta(config, window, users, catalog.frame, clean, sessions, malformed, table.height)
    files.meta.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return files


def _number_sessions(parts: list[tuple[pl.DataFrame, pl.DataFrame]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Give every session one global number, in order of start time."""
    sessions, events, offset = [], [], 0
    for session_frame, event_frame in parts:
        sessions.append(session_frame.with_columns(pl.col("session") + offset))
        events.append(event_frame.with_columns(pl.col("session") + offset))
        offset += session_frame.height
    all_sessions = pl.concat(sessions).sort("start", "user")
    renumber = all_sessions.select(pl.col("session"), new=pl.int_range(pl.len(), dtype=pl.Int64))
    all_sessions = all_sessions.with_columns(session=renumber["new"])
    all_events = pl.concat(events).join(renumber, on="session", maintain_order="left").drop("session").rename({"new": "session"})
    return all_sessions, all_events


def _export_events(events: pl.DataFrame, sessions: pl.DataFrame, catalog: pl.DataFrame, user_ids: list[str]):
    """Events as the shop exports them: string ids, ISO times, unit prices, sorted by time."""
    item_index = events["item"].clip(lower_bound=0)
    has_item = pl.col("item") >= 0
    frame = events.with_columns(
        session_id=pl.format("s{}", (pl.col("session") + 1).cast(pl.String).str.zfill(6)),
        user_id=pl.Series(user_ids).gather(events["user"]),
        item_id=pl.when(has_item).then(catalog["item_id"].gather(item_index)),
        price=pl.when(has_item).then(catalog["price"].gather(item_index)),
        tie=pl.col("event_type").replace_strict(_TIE_ORDER, return_dtype=pl.Int8),
    )
    frame = frame.sort("ts", "session", "tie", "item", maintain_order=True)
    return frame.select(
        "session_id", "user_id", "item_id",
        timestamp=pl.from_epoch("ts", "s").dt.strftime(_ISO),
        event_type=pl.col("event_type"), quantity=pl.col("quantity"), price=pl.col("price"),
        query=pl.col("query"), rating=pl.col("rating"),
    )


def inject_malformed(rng: np.random.Generator, clean: pl.DataFrame, fraction: float):
    """Copy a few rows and break each copy in one way; return the full table and what was broken.

    Each broken copy sits right after its source row, so the file still reads in time order.
    """
    per_kind = 0 if fraction <= 0 else max(1, round(fraction * clean.height / len(MALFORMED_KINDS)))
    per_kind = min(per_kind, clean.height // len(MALFORMED_KINDS))
    with_quantity = np.flatnonzero(clean["quantity"].is_not_null().to_numpy())
    sources = {"negative_quantity": rng.choice(with_quantity, min(per_kind, len(with_quantity)), replace=False)}
    others = rng.choice(np.setdiff1d(np.arange(clean.height), sources["negative_quantity"]),
                        per_kind * 3, replace=False)
    for k, kind in enumerate(MALFORMED_KINDS[:3]):
        sources[kind] = others[k * per_kind:(k + 1) * per_kind]
    broken = [_break_rows(clean, kind, np.sort(sources[kind])) for kind in MALFORMED_KINDS]
    table = (
        pl.concat([clean.with_columns(source=pl.int_range(pl.len()), kind=pl.lit(None, pl.String)), *broken])
        .sort("source", pl.col("kind").is_not_null(), maintain_order=True)
        .with_columns(event_id=pl.format("e{}", (pl.int_range(pl.len()) + 1).cast(pl.String).str.zfill(7)))
    )
    malformed = table.filter(pl.col("kind").is_not_null()).select("event_id", "kind")
    return table.select("event_id", *clean.columns), malformed


def _break_rows(clean: pl.DataFrame, kind: str, rows: np.ndarray) -> pl.DataFrame:
    copies = clean[rows].with_columns(source=pl.Series(rows, dtype=pl.Int64), kind=pl.lit(kind))
    cycle = np.arange(len(rows))
    if kind == "missing_user_id":
        return copies.with_columns(user_id=pl.lit(None, pl.String))
    if kind == "unparsable_timestamp":
        return copies.with_columns(timestamp=pl.Series([_BAD_TIMESTAMPS[i % 3] for i in cycle], dtype=pl.String))
    if kind == "unknown_event_type":
        return copies.with_columns(event_type=pl.Series([UNKNOWN_EVENT_NAMES[i % 3] for i in cycle], dtype=pl.String))
    return copies.with_columns(quantity=-pl.col("quantity"))


def _export_sessions(sessions: pl.DataFrame, events: pl.DataFrame, user_ids: list[str]) -> pl.DataFrame:
    n_events = events.group_by("session").len()
    return sessions.join(n_events, on="session", how="left", maintain_order="left").select(
        session_id=pl.format("s{}", (pl.col("session") + 1).cast(pl.String).str.zfill(6)),
        user_id=pl.Series(user_ids).gather(sessions["user"]),
        kind="kind",
        start_time=pl.from_epoch("start", "s").dt.strftime(_ISO),
        n_events=pl.col("len").fill_null(0),
        true_purchase_probability=pl.col("true_purchase_probability").round(6),
        purchased="purchased",
    )


def _meta(config, window, users, catalog, clean, sessions, malformed, n_rows) -> dict:
    by_type = clean["event_type"].value_counts().sort("event_type")
    by_kind = malformed["kind"].value_counts()
    kind_counts = dict(zip(by_kind["kind"].to_list(), by_kind["count"].to_list()))
    return {
        "name": "Shopformer demo shop",
        "config": config.model_dump(mode="json"),
        "window": {"start": _iso(window[0]), "end": _iso(window[1])},
        "counts": {
            "users": len(users),
            "active_users": clean["user_id"].n_unique(),
            "items": catalog.height,
            "sessions": sessions.height,
            "purchasing_sessions": int(sessions["purchased"].sum()),
            "events": clean.height,
            "rows_in_events_csv": n_rows,
            "events_by_type": dict(zip(by_type["event_type"].to_list(), by_type["count"].to_list())),
            "churners": int(users.is_churner.sum()),
            "bots": int(users.is_bot.sum()),
            "fraudsters": int(users.is_fraudster.sum()),
        },
        "malformed_rows": {kind: kind_counts.get(kind, 0) for kind in MALFORMED_KINDS},
        "malformed_total": malformed.height,
        "funnel_exceptions": list(FUNNEL_EXCEPTIONS),
        "files": {name: f"{name}.csv" for name in ("events", "catalog")} | {
            name: f"ground_truth/{name}.csv" for name in ("users", "sessions", "malformed")
        },
    }


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime(_ISO)
