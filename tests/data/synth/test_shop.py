"""The demo shop: determinism, honest ground truth, and the behaviours it claims to simulate."""

from __future__ import annotations

import json
import time
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from shopformer.data.mapping import EVENT_SYNONYMS
from shopformer.data.schema import EventLog
from shopformer.data.synth.catalog import DEPARTMENTS, LEAVES
from shopformer.data.synth.shop import (
    MALFORMED_KINDS,
    UNKNOWN_EVENT_NAMES,
    DemoShopConfig,
    DemoShopFiles,
    generate_demo_shop,
)

SMALL = DemoShopConfig(n_users=200, n_items=60, days=14)
ISO = "%Y-%m-%dT%H:%M:%SZ"


def read_events(files: DemoShopFiles) -> pl.DataFrame:
    """events.csv as written, every column a string."""
    return pl.read_csv(files.events, infer_schema_length=0)


def clean_event_log(files: DemoShopFiles) -> EventLog:
    """The canonical event log of the demo shop, built directly (malformed rows left out)."""
    malformed = pl.read_csv(files.malformed)["event_id"]
    raw = read_events(files).filter(~pl.col("event_id").is_in(malformed.implode()))
    return EventLog(raw.select(
        "event_id", "session_id", "user_id", "item_id",
        timestamp=pl.col("timestamp").str.to_datetime(ISO, time_zone="UTC").dt.epoch("s"),
        event_type=pl.col("event_type").replace_strict(EVENT_SYNONYMS),
        quantity=pl.col("quantity").cast(pl.Float64),
        value=pl.col("price").cast(pl.Float64),
        query="query",
        rating=pl.col("rating").cast(pl.Float64),
    ))


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[DemoShopFiles, float]:
    started = time.perf_counter()
    files = generate_demo_shop(tmp_path_factory.mktemp("demo"))
    return files, time.perf_counter() - started


@pytest.fixture(scope="module")
def files(shop) -> DemoShopFiles:
    return shop[0]


@pytest.fixture(scope="module")
def meta(files) -> dict:
    return json.loads(files.meta.read_text())


@pytest.fixture(scope="module")
def log(files) -> pl.DataFrame:
    return clean_event_log(files).frame


@pytest.fixture(scope="module")
def users(files) -> pl.DataFrame:
    return pl.read_csv(files.users)


@pytest.fixture(scope="module")
def sessions(files) -> pl.DataFrame:
    return pl.read_csv(files.sessions)


def _all_bytes(files: DemoShopFiles) -> dict[str, bytes]:
    return {str(p.relative_to(files.root)): p.read_bytes() for p in sorted(files.root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first = _all_bytes(generate_demo_shop(tmp_path / "a", SMALL))
    second = _all_bytes(generate_demo_shop(tmp_path / "b", SMALL))
    other = _all_bytes(generate_demo_shop(tmp_path / "c", SMALL.model_copy(update={"seed": 1})))
    assert set(first) == {"events.csv", "catalog.csv", "ground_truth/users.csv", "ground_truth/sessions.csv",
                          "ground_truth/malformed.csv", "ground_truth/meta.json"}
    assert first == second
    assert first["events.csv"] != other["events.csv"]
    assert first["catalog.csv"] != other["catalog.csv"]


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        DemoShopConfig(n_user=10)


def test_default_shop_size_and_speed(shop, meta) -> None:
    _, seconds = shop
    counts = meta["counts"]
    assert 100_000 <= counts["events"] <= 200_000
    assert counts["users"] == 2000 and counts["items"] == 800
    assert seconds < 5.0


def test_meta_counts_match_the_files(files, meta, log, users, sessions) -> None:
    raw = read_events(files)
    counts = meta["counts"]
    assert counts["rows_in_events_csv"] == raw.height
    assert counts["events"] == raw.height - meta["malformed_total"] == log.height
    assert counts["users"] == users.height
    assert counts["items"] == pl.read_csv(files.catalog).height
    assert counts["sessions"] == sessions.height == log["session_id"].n_unique()
    assert counts["purchasing_sessions"] == sessions["purchased"].sum()
    assert counts["churners"] == users["is_churner"].sum()
    clean = raw.filter(~pl.col("event_id").is_in(pl.read_csv(files.malformed)["event_id"].implode()))
    by_type = dict(clean["event_type"].value_counts().iter_rows())
    assert counts["events_by_type"] == by_type


def test_malformed_rows_are_few_recorded_and_really_malformed(files, meta) -> None:
    raw = read_events(files)
    malformed = pl.read_csv(files.malformed)
    assert set(meta["malformed_rows"]) == set(MALFORMED_KINDS)
    assert dict(malformed["kind"].value_counts().iter_rows()) == meta["malformed_rows"]
    assert 0.001 < meta["malformed_total"] / meta["counts"]["events"] < 0.003
    broken = raw.join(malformed, on="event_id")
    for kind, rows in broken.partition_by("kind", as_dict=True).items():
        kind = kind[0]
        if kind == "missing_user_id":
            assert rows["user_id"].is_null().all()
        elif kind == "unparsable_timestamp":
            assert rows["timestamp"].str.to_datetime(ISO, strict=False).is_null().all()
        elif kind == "unknown_event_type":
            assert set(rows["event_type"]) <= set(UNKNOWN_EVENT_NAMES)
            assert not set(UNKNOWN_EVENT_NAMES) & set(EVENT_SYNONYMS)
        else:
            assert (rows["quantity"].cast(pl.Int64) < 0).all()
    assert raw["event_id"].is_unique().all()


def test_every_clean_row_is_well_formed(files, log) -> None:
    assert log["user_id"].null_count() == 0
    assert log["timestamp"].null_count() == 0
    assert set(log["event_type"]) <= {"view", "favourite", "cart", "purchase", "search", "review"}
    assert log.filter(pl.col("item_id").is_null())["event_type"].unique().to_list() == ["search"]
    assert log.filter(pl.col("event_type") == "search")["query"].null_count() == 0
    ratings = log.filter(pl.col("event_type") == "review")["rating"]
    assert ratings.null_count() == 0 and ratings.is_between(1, 5).all()
    assert log["timestamp"].is_sorted()


def test_purchases_follow_a_view_in_the_same_session_except_reorders(files, log) -> None:
    """A purchase without a view in its session is a re-order of a consumable bought before."""
    views = log.filter(pl.col("event_type") == "view").group_by("session_id", "item_id").agg(
        first_view=pl.col("timestamp").min())
    purchases = log.filter(pl.col("event_type") == "purchase").join(views, on=["session_id", "item_id"], how="left")
    unviewed = purchases.filter(pl.col("first_view").is_null() | (pl.col("first_view") > pl.col("timestamp")))
    assert 0 < unviewed.height < purchases.height / 3
    consumables = [leaf.path for leaf in LEAVES if leaf.consumable]
    catalog = pl.read_csv(files.catalog).select("item_id", "category")
    assert unviewed.join(catalog, on="item_id")["category"].is_in(consumables).all()
    earlier = unviewed.join(purchases.select("user_id", "item_id", before="timestamp"), on=["user_id", "item_id"])
    bought_before = earlier.filter(pl.col("before") < pl.col("timestamp"))["event_id"].n_unique()
    assert bought_before == unviewed.height


def test_every_purchase_is_carted_first(log) -> None:
    carts = log.filter(pl.col("event_type") == "cart").group_by("session_id", "item_id").agg(
        first_cart=pl.col("timestamp").min())
    purchases = log.filter(pl.col("event_type") == "purchase").join(carts, on=["session_id", "item_id"], how="left")
    assert (purchases["first_cart"] < purchases["timestamp"]).all()


def test_churners_are_silent_after_their_churn_time(log, users) -> None:
    churners = users.filter(pl.col("is_churner") == 1).select(
        "user_id", churn=pl.col("churn_time").str.to_datetime(ISO, time_zone="UTC").dt.epoch("s"))
    assert churners.height > 100
    last_seen = log.group_by("user_id").agg(last=pl.col("timestamp").max()).join(churners, on="user_id")
    assert last_seen.height == churners.height
    assert (last_seen["last"] <= last_seen["churn"]).all()
    assert users.filter(pl.col("is_churner") == 0)["churn_time"].null_count() == users.height - churners.height


def test_bots_browse_fast_and_never_buy(log, users) -> None:
    bots = users.filter(pl.col("is_bot") == 1)["user_id"]
    per_session = log.group_by("session_id").agg(pl.len(), bot=pl.col("user_id").is_in(bots.implode()).first())
    bot_mean = per_session.filter("bot")["len"].mean()
    human_mean = per_session.filter(~pl.col("bot"))["len"].mean()
    assert bot_mean > 5 * human_mean
    bot_rows = log.filter(pl.col("user_id").is_in(bots.implode()))
    assert set(bot_rows["event_type"]) == {"view"}


def test_fraudsters_are_new_accounts_buying_expensive_items(log, users, meta) -> None:
    fraud = users.filter(pl.col("is_fraudster") == 1)
    assert (fraud["signup_time"] > meta["window"]["start"]).all()
    purchases = log.filter(pl.col("event_type") == "purchase").with_columns(
        fraud=pl.col("user_id").is_in(fraud["user_id"].implode()))
    assert purchases.filter("fraud")["value"].mean() > 2 * purchases.filter(~pl.col("fraud"))["value"].mean()


def test_true_probability_ranks_purchasing_sessions_higher(log, sessions) -> None:
    browse = sessions.filter(pl.col("kind") == "browse")
    by_outcome = dict(browse.group_by("purchased").agg(pl.col("true_purchase_probability").mean()).iter_rows())
    assert by_outcome[1] > 2 * by_outcome[0]
    # The outcome is one draw from the probability: its mean matches the observed rate.
    assert abs(browse["true_purchase_probability"].mean() - browse["purchased"].mean()) < 0.02
    bought = log.filter(pl.col("event_type") == "purchase")["session_id"].unique()
    assert set(sessions.filter(pl.col("purchased") == 1)["session_id"]) == set(bought)


def test_sessions_of_a_user_are_well_apart(log) -> None:
    """Sessions never overlap and are split by more than 30 minutes, as a sessionizer expects."""
    spans = log.group_by("user_id", "session_id").agg(
        start=pl.col("timestamp").min(), end=pl.col("timestamp").max()).sort("user_id", "start")
    gaps = spans.with_columns(gap=pl.col("start") - pl.col("end").shift().over("user_id")).drop_nulls("gap")
    assert gaps["gap"].min() > 30 * 60


def test_titles_carry_brand_product_and_category(files) -> None:
    catalog = pl.read_csv(files.catalog)
    brands_of = {dept.name: set(dept.brands) for dept in DEPARTMENTS}
    for row in catalog.iter_rows(named=True):
        leaf = next(leaf for leaf in LEAVES if leaf.path == row["category"])
        assert row["title"].startswith(row["brand"] + " ")
        assert row["brand"] in brands_of[row["category"].split(" > ")[0]]
        assert any(noun in row["title"] for noun in leaf.nouns)
        assert leaf.path.split(" > ")[-1].lower() in row["description"]
    assert catalog["price"].min() > 0 and catalog["item_id"].is_unique().all()
    assert catalog["category"].n_unique() == len(LEAVES)


def test_popularity_is_skewed(log) -> None:
    views = log.filter(pl.col("event_type") == "view")["item_id"].value_counts(sort=True)["count"]
    top_decile = views.head(len(views) // 10).sum()
    assert top_decile > 0.4 * views.sum()


def test_event_mapping_describes_the_files(files) -> None:
    mapping = files.event_mapping()
    header = read_events(files).columns
    for column in [mapping.user_col, mapping.item_col, mapping.time_col, mapping.event_col,
                   *mapping.optional_columns().values()]:
        assert column in header
    assert {mapping.canonical_event(raw) for raw in ("page_view", "add_to_cart", "wishlist")} == {
        "view", "cart", "favourite"}
