"""Regular customers' visits: search → views → (wishlist / add to cart) → purchase, and re-orders.

Each session gets a purchase probability from the customer's hidden traits and what they looked at;
whether it converts is one Bernoulli draw from exactly that probability, which is written to the
ground truth so that prediction tasks can compare their AUC with the best achievable ranking.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from shopformer.data.synth.catalog import LEAVES, N_DEPARTMENTS, DemoCatalog
from shopformer.data.synth.users import DAY, SEGMENTS, ActivityRhythm, DemoUsers

# Raw spellings written to events.csv, as a shop's tracking would name them.
SEARCH, VIEW, WISHLIST, CART, PURCHASE, REVIEW = "search", "page_view", "wishlist", "add_to_cart", "purchase", "review"

EVENT_SCHEMA = {
    "session": pl.Int64, "user": pl.Int64, "item": pl.Int64, "ts": pl.Int64,
    "event_type": pl.String, "quantity": pl.Int64, "query": pl.String, "rating": pl.Int64,
}
SESSION_SCHEMA = {
    "session": pl.Int64, "user": pl.Int64, "start": pl.Int64, "kind": pl.String,
    "true_purchase_probability": pl.Float64, "purchased": pl.Int8,
}

#: Seconds kept free before a session's first view, for re-orders and reviews placed there.
PRE_LEAD = 300
#: Quiet time between two sessions of a user: longer than the usual 30-minute sessionizer gap.
MIN_SESSION_GAP = 45 * 60
#: Base purchase log-odds of a session (tuned for roughly one converting visit in seven).
BASE_LOG_ODDS = -5.0
EXPLORE_SHARE = 0.15
SEARCH_SHARE = 0.3
REVIEW_SHARE = 0.15


def event_rows(session, user, item, ts, event_type: str, quantity=None, query=None, rating=None) -> pl.DataFrame:
    """Events of one type in the internal layout (integer user/item/session indices, unix seconds)."""
    n = len(session)
    data = {
        "session": session, "user": user, "item": item,
        "ts": np.floor(np.asarray(ts, dtype=np.float64)).astype(np.int64),
        "event_type": [event_type] * n,
        "quantity": quantity if quantity is not None else [None] * n,
        "query": query if query is not None else [None] * n,
        "rating": rating if rating is not None else [None] * n,
    }
    return pl.DataFrame(data, schema=EVENT_SCHEMA)


def keep_non_overlapping(user: np.ndarray, start: np.ndarray, end: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Sessions (sorted by user, start) to keep so none overlaps the previous kept one or ends past `limit`."""
    keep = np.zeros(len(user), dtype=bool)
    last_user, last_end = -1, -np.inf
    for i, (u, s, e, lim) in enumerate(zip(user.tolist(), start.tolist(), end.tolist(), limit.tolist())):
        if u != last_user:
            last_user, last_end = u, -np.inf
        if s >= last_end + MIN_SESSION_GAP and e <= lim:
            keep[i] = True
            last_end = e
    return keep


def utility(users: DemoUsers, catalog: DemoCatalog, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """How much a user likes an item: taste for its department, quality, and price (relative and absolute)."""
    taste = users.taste[user, catalog.department[item]]
    sensitivity = users.price_sensitivity[user]
    return (
        0.8 * np.log(N_DEPARTMENTS * taste + 0.1)
        + 0.5 * catalog.quality[item]
        - 1.5 * sensitivity * catalog.relative_price[item]
        - 0.3 * sensitivity * np.log(catalog.price[item] / 30.0)
    )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _segment_values(users: DemoUsers, user: np.ndarray, name: str) -> np.ndarray:
    return np.array([getattr(s, name) for s in SEGMENTS])[users.segment[user]]


def _session_starts(rng: np.random.Generator, users: DemoUsers, rhythm: ActivityRhythm):
    """Visit times of regular users, sorted by user then time; churners thin out before they leave."""
    regular = np.flatnonzero(users.is_regular)
    days = (users.active_end[regular] - users.active_start[regular]) / DAY
    rate = _segment_values(users, regular, "sessions_per_day") * users.activity[regular]
    counts = 1 + rng.poisson(rate * days)
    user = np.repeat(regular, counts)
    u = rng.random(len(user))
    u = np.where(users.is_churner[user], u**1.5, u)
    start = rhythm.times_between(users.active_start[user] + PRE_LEAD, users.active_end[user], u)
    order = np.lexsort((start, user))
    return user[order], np.floor(start[order])


def _draw_view_items(rng: np.random.Generator, catalog: DemoCatalog, dept: np.ndarray) -> np.ndarray:
    """Items seen: mostly popular items of the session's department, sometimes anything popular."""
    # Items are sorted by department, so `dept + within-department CDF` is one increasing array.
    within = np.zeros(len(catalog))
    for d in range(N_DEPARTMENTS):
        members = np.flatnonzero(catalog.department == d)
        cdf = np.cumsum(catalog.popularity[members])
        within[members] = d + cdf / cdf[-1]
        within[members[-1]] = d + 1.0
    u = rng.random(len(dept))
    in_dept = np.searchsorted(within, dept + u, side="right")
    anywhere = np.searchsorted(np.cumsum(catalog.popularity), u * catalog.popularity.sum(), side="right")
    explore = rng.random(len(dept)) < EXPLORE_SHARE
    return np.minimum(np.where(explore, anywhere, in_dept), len(catalog) - 1)


def _view_offsets(rng: np.random.Generator, n_views: np.ndarray, lead: np.ndarray) -> np.ndarray:
    """Seconds from session start to each view: a lead-in, then log-normal dwell times."""
    gaps = np.clip(rng.lognormal(np.log(35.0), 0.9, n_views.sum()), 3.0, 900.0)
    first = np.cumsum(n_views) - n_views
    gaps[first] = 0.0
    cumulative = np.cumsum(gaps)
    return np.repeat(lead - cumulative[first], n_views) + cumulative


def _choose_purchases(rng: np.random.Generator, views: pl.DataFrame, bought: np.ndarray) -> pl.DataFrame:
    """For converting sessions, the viewed items bought: the best by noisy utility, sometimes two."""
    second_item = pl.Series(rng.random(len(bought)) < 0.2)
    best = (
        views.filter(pl.Series(bought).gather(views["session"]))
        .group_by("session", "item")
        .agg(pl.col("score").max(), pl.col("ts").sort_by("score").last().alias("view_ts"), pl.col("user").first())
        .sort(["session", "score", "item"], descending=[False, True, False])
        .with_columns(rank=pl.int_range(pl.len()).over("session"))
    )
    return best.filter((pl.col("rank") == 0) | ((pl.col("rank") == 1) & second_item.gather(best["session"])))


def _purchase_quantities(rng: np.random.Generator, catalog: DemoCatalog, item: np.ndarray) -> np.ndarray:
    """One of most things; consumables are often stocked up two or three at a time."""
    stock_up = 1 + np.minimum(rng.poisson(0.6, len(item)), 2)
    spare = 1 + (rng.random(len(item)) < 0.05)
    return np.where(catalog.consumable[item], stock_up, spare).astype(np.int64)


def _search_rows(rng, catalog: DemoCatalog, views: pl.DataFrame, has_search: np.ndarray, start) -> pl.DataFrame:
    """A search before the first view, its query describing the item then viewed."""
    first = views.group_by("session").agg(pl.col("item").first(), pl.col("user").first()).sort("session")
    first = first.filter(pl.Series(has_search).gather(first["session"]))
    brands = catalog.frame["brand"].to_list()
    style = rng.integers(0, 4, first.height)
    queries = []
    for item, how in zip(first["item"].to_list(), style.tolist()):
        noun = catalog.noun[item].lower()
        leaf_name = LEAVES[catalog.leaf[item]].path.split(" > ")[-1].lower()
        queries.append((noun, noun, f"{brands[item].lower()} {noun}", leaf_name)[how])
    session = first["session"].to_numpy()
    return event_rows(session, first["user"].to_numpy(), np.full(first.height, -1), start[session], SEARCH,
                      query=queries)


def _reorders_and_reviews(rng, users: DemoUsers, catalog: DemoCatalog, sessions: dict, checkouts: dict):
    """Walk each user's sessions in time order: re-order consumables that ran out, review past buys.

    A consumable is due again about three weeks after it was bought; at each visit after that the
    customer re-orders it (from the order history, without viewing it first) with the segment's
    repeat propensity. The session's true purchase probability includes these re-orders.
    """
    user, start, p_browse = sessions["user"], sessions["start"], sessions["p_browse"]
    repeat = _segment_values(users, user, "repeat_propensity")
    p_true, purchased = p_browse.copy(), sessions["bought"].copy()
    reorders, reviews = [], []
    current, due, pending = -1, {}, []
    for s, (u, t0) in enumerate(zip(user.tolist(), start.tolist())):
        if u != current:
            current, due, pending = u, {}, []
        ready = [r for r in pending if r[1] <= t0][:3]
        pending = [r for r in pending if r not in ready]
        reviews += [(s, u, item, t0 - 200 + 30 * j) for j, (item, _) in enumerate(ready)]
        due_now = sorted(item for item, t in due.items() if t <= t0)
        p_true[s] = 1.0 - (1.0 - p_browse[s]) * (1.0 - repeat[s]) ** len(due_now)
        reordered = []
        for item in due_now:
            if rng.random() < repeat[s]:
                reordered.append(item)
                reorders.append((s, u, item, t0 - 120))
            elif rng.random() < 0.5:  # bought it elsewhere or gave up on it
                del due[item]
        purchased[s] = purchased[s] or bool(reordered)
        checkout_ts, items = checkouts.get(s, (0, []))
        for item, ts in [(i, t0 - 90) for i in reordered] + [(i, checkout_ts) for i in items]:
            if catalog.consumable[item]:
                due[item] = ts + DAY * rng.lognormal(np.log(21.0), 0.3)
            if rng.random() < REVIEW_SHARE:
                pending.append((item, ts + 2 * DAY))
    return p_true, purchased, reorders, reviews


def _reorder_and_review_rows(rng, users, catalog, reorders: list, reviews: list) -> list[pl.DataFrame]:
    frames = []
    if reorders:
        s, u, item, ts = (np.array(col) for col in zip(*reorders))
        quantity = _purchase_quantities(rng, catalog, item)
        frames += [event_rows(s, u, item, ts, CART, quantity), event_rows(s, u, item, ts + 30, PURCHASE, quantity)]
    if reviews:
        s, u, item, ts = (np.array(col) for col in zip(*reviews))
        noise = rng.normal(0.0, 0.8, len(item))
        rating = np.clip(np.round(3.3 + 0.8 * utility(users, catalog, u, item) + noise), 1, 5).astype(np.int64)
        frames.append(event_rows(s, u, item, ts, REVIEW, rating=rating))
    return frames


def _funnel_rows(rng, catalog: DemoCatalog, views: pl.DataFrame, bought: np.ndarray, last_view: np.ndarray):
    """Wishlist and cart events after views, and the checkout of converting sessions."""
    chosen = _choose_purchases(rng, views, bought)
    s, u, item = (chosen[c].to_numpy() for c in ("session", "user", "item"))
    quantity = _purchase_quantities(rng, catalog, item)
    checkout = np.floor(last_view[s] + rng.uniform(60.0, 240.0, len(s)))
    frames = [
        event_rows(s, u, item, chosen["view_ts"].to_numpy() + rng.uniform(5.0, 45.0, len(s)), CART, quantity),
        event_rows(s, u, item, checkout, PURCHASE, quantity),
    ]
    pairs = chosen.select("session", "item", chosen=pl.lit(True))
    is_chosen = views.join(pairs, on=["session", "item"], how="left", maintain_order="left")["chosen"].is_not_null()
    # Abandoned carts and wish-listing grow with how much the customer likes what they see.
    util = views["utility"].to_numpy()
    abandoned = (rng.random(views.height) < _sigmoid(util - 4.3)) & ~is_chosen.to_numpy()
    wished = rng.random(views.height) < _sigmoid(util - 3.8)
    for mask, kind, delay in ((abandoned, CART, (5.0, 45.0)), (wished, WISHLIST, (3.0, 30.0))):
        rows = views.filter(pl.Series(mask))
        ts = rows["ts"].to_numpy() + rng.uniform(*delay, rows.height)
        quantity = np.ones(rows.height, dtype=np.int64) if kind == CART else None
        frames.append(event_rows(rows["session"], rows["user"], rows["item"], ts, kind, quantity))
    checkouts = {}
    for session, bought, ts in zip(s.tolist(), item.tolist(), checkout.tolist()):
        checkouts.setdefault(session, (ts, []))[1].append(bought)
    return frames, checkouts


def _kept_views(rng, users: DemoUsers, catalog: DemoCatalog, rhythm: ActivityRhythm):
    """Draw visits and their views, then drop visits that overlap or run past the user's churn."""
    user, start = _session_starts(rng, users, rhythm)
    dept = np.argmax(np.log(users.taste[user] + 1e-12) + rng.gumbel(size=(len(user), N_DEPARTMENTS)), axis=1)
    n_views = np.minimum(rng.geometric(1.0 / _segment_values(users, user, "mean_views")), 40)
    has_search = rng.random(len(user)) < SEARCH_SHARE
    view_session = np.repeat(np.arange(len(user)), n_views)
    view_item = _draw_view_items(rng, catalog, dept[view_session])
    view_ts = np.floor(start[view_session] + _view_offsets(rng, n_views, np.where(has_search, 20.0, 0.0)))
    last_view = view_ts[np.cumsum(n_views) - 1]
    keep = keep_non_overlapping(user, start - PRE_LEAD, last_view + 300.0, users.active_end[user])
    new_index = np.cumsum(keep) - 1
    view_keep = keep[view_session]
    views = pl.DataFrame({
        "session": new_index[view_session[view_keep]], "user": user[view_session[view_keep]],
        "item": view_item[view_keep], "ts": view_ts[view_keep].astype(np.int64),
    })
    sessions = {"user": user[keep], "start": start[keep], "n_views": n_views[keep], "has_search": has_search[keep]}
    return views, sessions, last_view[keep]


def simulate_browsing(rng, users: DemoUsers, catalog: DemoCatalog, rhythm: ActivityRhythm):
    """Sessions (with true purchase probabilities) and events of regular customers.

    Session indices are local (0, 1, ...), sorted by user then time.
    """
    views, sessions, last_view = _kept_views(rng, users, catalog, rhythm)
    user, n_views = sessions["user"], sessions["n_views"]
    util = utility(users, catalog, views["user"].to_numpy(), views["item"].to_numpy())
    views = views.with_columns(utility=util, score=util + rng.gumbel(size=views.height))
    # Purchase intent: the best thing seen, how long they browsed, how familiar they are, plus a
    # hidden mood no model can see (this keeps the best achievable AUC below 1).
    best_seen = np.maximum.reduceat(util, np.cumsum(n_views) - n_views)
    is_first = np.r_[True, user[1:] != user[:-1]]
    prior_visits = np.arange(len(user)) - np.maximum.accumulate(np.where(is_first, np.arange(len(user)), 0))
    log_odds = (
        BASE_LOG_ODDS + _segment_values(users, user, "conversion_bias") + best_seen
        + 0.3 * np.log(n_views) + 0.15 * np.log1p(prior_visits) + rng.normal(0.0, 1.0, len(user))
    )
    sessions["p_browse"] = _sigmoid(log_odds)
    sessions["bought"] = rng.random(len(user)) < sessions["p_browse"]

    frames = [event_rows(views["session"], views["user"], views["item"], views["ts"], VIEW)]
    frames.append(_search_rows(rng, catalog, views, sessions["has_search"], sessions["start"]))
    funnel, checkouts = _funnel_rows(rng, catalog, views, sessions["bought"], last_view)
    p_true, purchased, reorders, reviews = _reorders_and_reviews(rng, users, catalog, sessions, checkouts)
    frames += funnel + _reorder_and_review_rows(rng, users, catalog, reorders, reviews)
    session_frame = pl.DataFrame({
        "session": np.arange(len(user)), "user": user, "start": sessions["start"].astype(np.int64),
        "kind": ["browse"] * len(user), "true_purchase_probability": p_true, "purchased": purchased.astype(np.int8),
    }, schema=SESSION_SCHEMA)
    return session_frame, pl.concat(frames)
