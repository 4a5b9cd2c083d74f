"""Fraud detection on a purchase log with sign-up time, device and IP address (one row per account).

The layout is that of the public e-commerce fraud data (`user_id, signup_time, purchase_time,
purchase_value, device_id, source, browser, sex, age, ip_address, class`, plus an IP-range to
country table). The file is read and validated like any event log (bad rows are quarantined with
their reason) and split by purchase time: the earliest 70% of accounts train, the next 10%
validate, the last 20% test. Every method is reported on the test part by ROC-AUC and
precision@1% (the share of frauds among the 1% highest scores, ties broken against the frauds):

- generic unsupervised detectors (IsolationForest, PyOD's ECOD and COPOD) on the classic features,
  fitted on the training accounts without labels;
- our unsupervised score (`insight.anomaly`, default method), fitted the same way on its signals;
- LightGBM on the classic features (the baseline) and our supervised model, LightGBM on the
  classic features plus the validation-best of three groups: our unsupervised score; account-sharing
  history, velocity and frequency encodings; both of those with every signal's tail probability.
  Both pick leaves and class weighting by validation AUC, trees early-stopped on validation (the
  task baselines' tuning).

Counts over the whole file (accounts per device or IP, frequency encodings) use no labels. The
unsupervised methods are also reported over all accounts (`all_rows`), fitted on all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shopformer.data.ingest import ingest_files
from shopformer.data.io import RawTable, read_table
from shopformer.data.mapping import EventMapping
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.data.timeparse import parse_times
from shopformer.data.validate import validate_events
from shopformer.errors import DataError
from shopformer.evaluate.binary import bootstrap_ci, roc_auc
from shopformer.insight.anomaly import GENERIC, METHODS, AnomalyDetector, GenericDetector, score_users, user_signals
from shopformer.runtime import machine_info, versions
from shopformer.tasks.baselines import tuned_booster

__all__ = ["REQUIRED", "FraudRows", "precision_at", "read_fraud", "read_ip_countries", "run_demo_shop", "run_fraud", "split_by_time"]

REQUIRED = ("user_id", "signup_time", "purchase_time", "class")
#: Optional columns and what is left out without them.
OPTIONAL = {
    "purchase_value": "purchase value", "device_id": "users per device and device history",
    "ip_address": "users per IP, IP history and country", "source": "source", "browser": "browser",
    "sex": "sex", "age": "age",
}
_CATEGORICAL = ("source", "browser", "sex", "country")

#: The file has no item: every row is one order, and the event contract needs an item column.
_ORDER_ITEM = "order_item"
SPLIT = (0.7, 0.1, 0.2)
#: A purchase this many seconds after sign-up or sooner happened in the sign-up minute (times are to the minute).
_INSTANT = 60
TOP_SHARE = 0.01


@dataclass
class FraudRows:
    """Validated accounts in purchase-time order, what was quarantined, and notes on skipped columns."""

    frame: pl.DataFrame
    events: pl.DataFrame
    rows_read: int
    quarantine: dict[str, int]
    time_format: str
    notes: list[str] = field(default_factory=list)


def _mapping(columns: list[str]) -> EventMapping:
    return EventMapping(user_col="user_id", item_col=_ORDER_ITEM, time_col="purchase_time", event_col=None,
                        default_event="purchase", event_id_col="user_id",
                        value_col="purchase_value" if "purchase_value" in columns else None)


def read_fraud(path: str | Path, *, now: int | None = None) -> FraudRows:
    """Read and validate a fraud file: accounts with unix-second times, label 0/1, sorted by purchase time."""
    raw = read_table(path)
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise DataError(f"lacks the column(s) {', '.join(missing)} the fraud benchmark needs", path=str(path),
                        expected=", ".join(REQUIRED))
    notes = [f"no {c} column: {what} skipped" for c, what in OPTIONAL.items() if c not in raw.columns]
    raw = RawTable(raw.frame.with_columns(pl.lit("order").alias(_ORDER_ITEM)), raw.ragged, raw.source)
    result = validate_events(raw, _mapping(raw.columns), now=now)
    quarantine = {k: v for k, v in result.counts().items() if k != "accepted"}
    kept = raw.frame.join(result.quarantine.select("__row__"), on="__row__", how="anti")
    signup, _ = parse_times(kept["signup_time"], "auto")
    purchase, _ = parse_times(kept["purchase_time"], result.time_format)
    label = kept["class"].cast(pl.Int8, strict=False)
    frame = kept.with_columns(signup_s=signup, purchase_s=purchase, label=label)
    for reason, bad in (("unparsable_signup_time", pl.col("signup_s").is_null()), ("invalid_label", ~pl.col("label").is_in([0, 1]))):
        count = frame.filter(bad.fill_null(True)).height
        if count:
            quarantine[reason] = count
        frame = frame.filter(~bad.fill_null(True))
    numbers = [pl.col(c).cast(pl.Float64, strict=False) for c in ("purchase_value", "age", "ip_address") if c in frame.columns]
    frame = frame.with_columns(numbers).sort("purchase_s", "__row__")
    events = result.events.frame.join(frame.select("user_id"), on="user_id", how="semi")
    return FraudRows(frame, events, raw.rows_read, quarantine, result.time_format, notes)


def read_ip_countries(path: str | Path) -> pl.DataFrame:
    """An IP-range table (`lower_bound_ip_address, upper_bound_ip_address, country`) sorted by lower bound."""
    raw = read_table(path)
    wanted = ("lower_bound_ip_address", "upper_bound_ip_address", "country")
    if any(c not in raw.columns for c in wanted):
        raise DataError("is not an IP-range table", path=str(path), expected=", ".join(wanted))
    bounds = [pl.col(c).cast(pl.Float64, strict=False) for c in wanted[:2]]
    return raw.frame.select(*bounds, "country").drop_nulls(wanted[:2]).sort("lower_bound_ip_address")


def _with_country(frame: pl.DataFrame, ranges: pl.DataFrame) -> pl.DataFrame:
    located = frame.with_row_index("__order__").sort("ip_address").join_asof(
        ranges, left_on="ip_address", right_on="lower_bound_ip_address")
    inside = pl.col("ip_address") <= pl.col("upper_bound_ip_address")
    country = pl.when(inside).then(pl.col("country")).otherwise(pl.lit("unknown"))
    return located.with_columns(country=country).sort("__order__").drop("__order__", *ranges.columns[:2])


def split_by_time(n: int, shares: tuple[float, float, float] = SPLIT) -> np.ndarray:
    """Part of each of `n` time-ordered rows: 0 train, 1 validation, 2 test (earliest first)."""
    n_train, n_valid = round(shares[0] * n), round(shares[1] * n)
    return np.repeat([0, 1, 2], [n_train, n_valid, n - n_train - n_valid])


def precision_at(labels: np.ndarray, scores: np.ndarray, share: float = TOP_SHARE) -> float:
    """Share of positives among the top `share` of scores; tied scores put negatives first (pessimistic)."""
    k = max(1, math.ceil(share * len(labels)))
    order = np.lexsort((labels, -scores))
    return float(labels[order[:k]].mean())


def _keys(frame: pl.DataFrame) -> list[str]:
    return [c for c in ("device_id", "ip_address") if c in frame.columns]


def _key(column: str) -> pl.Expr:
    # An account without a device (or IP) shares it with nobody: its own user id stands in.
    return pl.coalesce(pl.col(column).cast(pl.String), pl.lit("no value ") + pl.col("user_id"))


def classic_features(frame: pl.DataFrame) -> pl.DataFrame:
    """The features fraud notebooks use: sign-up to purchase, users per device and IP, purchase hour and
    weekday, value, age, and source, browser, sex and country as integer codes."""
    per_key = {"device_id": "users_per_device", "ip_address": "users_per_ip"}
    columns = [
        (pl.col("purchase_s") - pl.col("signup_s")).alias("signup_to_purchase_s"),
        *(pl.len().over(_key(c)).cast(pl.Int64).alias(per_key[c]) for c in _keys(frame)),
        ((pl.col("purchase_s") % 86_400) // 3_600).alias("purchase_hour"),
        # 1970-01-01 was a Thursday: +3 makes Monday 0.
        ((pl.col("purchase_s") // 86_400 + 3) % 7).alias("purchase_weekday"),
        *(pl.col(c) for c in ("purchase_value", "age") if c in frame.columns),
        *(pl.col(c).fill_null("").rank("dense").cast(pl.Int32).alias(c) for c in _CATEGORICAL if c in frame.columns),
    ]
    return frame.select(columns)


def _velocity(frame: pl.DataFrame, column: str, window: int) -> pl.Series:
    """Accounts on the same device (or IP) that purchased in the `window` seconds up to each purchase."""
    base = frame.select(key=_key(column), t=pl.col("purchase_s"), so_far=pl.int_range(1, pl.len() + 1).over(_key(column)))
    lookup = base.rename({"so_far": "before"}).sort("t")
    earlier = base.with_row_index("__i__").with_columns(t=pl.col("t") - window).sort("t").join_asof(
        lookup, on="t", by="key", strategy="backward", check_sortedness=False).sort("__i__")
    return (earlier["so_far"] - earlier["before"].fill_null(0)).alias(f"{column}_accounts_{window // 3600}h")


def history_features(frame: pl.DataFrame) -> pl.DataFrame:
    """Target-free features beyond the classic ones: accounts seen so far on the device and IP, time since
    each was first seen, purchases on it in the last hour and day, the sign-up gap to the previous account
    on it, sign-up hour, and how common each value, age, country and source-browser pair is."""
    columns: list[pl.Expr] = [((pl.col("signup_s") % 86_400) // 3_600).alias("signup_hour")]
    for c in _keys(frame):
        key = _key(c)
        columns += [
            pl.int_range(1, pl.len() + 1).over(key).alias(f"{c}_accounts_so_far"),
            (pl.col("purchase_s") - pl.col("purchase_s").min().over(key)).alias(f"{c}_seconds_since_first"),
            (pl.col("signup_s") - pl.col("signup_s").shift(1).over(key)).abs().alias(f"{c}_signup_gap_to_previous"),
        ]
    frequent = [c for c in ("purchase_value", "age", "country") if c in frame.columns]
    columns += [pl.len().over(c).alias(f"{c}_frequency") for c in frequent]
    if "source" in frame.columns and "browser" in frame.columns:
        columns.append(pl.len().over("source", "browser").alias("source_browser_frequency"))
    table = frame.select(columns)
    return table.with_columns([_velocity(frame, c, w) for c in _keys(frame) for w in (3_600, 86_400)])


def _generic_matrix(classic: pl.DataFrame) -> np.ndarray:
    """Classic features for generic detectors: categories by their frequency (rare is unusual), nulls by the median."""
    exprs = [(pl.len().over(c) / pl.len()).alias(c) if c in _CATEGORICAL else pl.col(c).cast(pl.Float64) for c in classic.columns]
    x = classic.select(exprs).to_numpy().astype(float)
    return np.where(np.isnan(x), np.nanmedian(x, axis=0), x)


def _metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {"roc_auc": round(roc_auc(labels, scores), 4), f"precision_at_{TOP_SHARE:.0%}": round(precision_at(labels, scores), 4)}


def _report(labels: np.ndarray, parts: np.ndarray, scores: np.ndarray) -> dict[str, dict[str, float]]:
    return {name: _metrics(labels[parts == k], scores[parts == k]) for k, name in ((1, "validation"), (2, "test"))}


def _lightgbm(x: np.ndarray, y: np.ndarray, parts: np.ndarray) -> tuple[np.ndarray, dict]:
    """Scores of every row from the task baselines' LightGBM (settings picked and trees early-stopped on validation)."""
    train, valid = parts == 0, parts == 1
    booster, setting = tuned_booster(x[train], y[train], x[valid], y[valid], 2, num_threads=1)
    return booster.predict(x, num_iteration=setting["rounds"]), setting


def _signal_table(rows: FraudRows) -> tuple[pl.DataFrame, dict]:
    accounts = rows.frame.select("user_id", pl.col("signup_s").alias("signup_time"), *_keys(rows.frame))
    table, signals = user_signals(rows.events, accounts=accounts)
    return rows.frame.select("user_id").join(table, on="user_id", how="left", maintain_order="left"), signals


def _unsupervised(table: pl.DataFrame, signals: dict, x: np.ndarray, fit: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Scores of every row from each unsupervised method fitted (without labels) on the rows `fit`."""
    ours = {f"insight_{m}": AnomalyDetector(m, signals=signals, seed=seed).fit(table.filter(fit)).score(table)
            for m in ("default", "tail")}
    generic = {name: GenericDetector(name, seed).fit(x[fit]).score(x) for name in GENERIC}
    return ours | generic


def _signal_columns(table: pl.DataFrame, signals: dict, score: np.ndarray, fit: np.ndarray) -> pl.DataFrame:
    """Our unsupervised `score` and each signal's -log tail probability among the rows `fit`."""
    detector = AnomalyDetector("tail", signals=signals).fit(table.filter(fit))
    tails = {f"tail_{name}": -np.log(p) for name, p in detector.tail_probabilities(table).items()}
    return pl.DataFrame({"insight_score": score, **tails})


def _split_summary(frame: pl.DataFrame, parts: np.ndarray) -> dict[str, dict]:
    out = {}
    for k, name in enumerate(("train", "validation", "test")):
        rows = frame.filter(pl.Series(parts == k))
        out[name] = {"rows": rows.height, "fraud_rate": round(float(rows["label"].mean()), 4) if rows.height else None,
                     "purchases_from": _iso(rows["purchase_s"].min()), "purchases_to": _iso(rows["purchase_s"].max())}
    return out


def detector_versions() -> dict[str, str]:
    """`versions()` plus the detector libraries the figures depend on."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("scikit-learn", "lightgbm", "pyod"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return versions() | found


def _iso(seconds: int | None) -> str | None:
    return None if seconds is None else pl.select(pl.from_epoch(pl.lit(seconds), "s").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).item()


def _signal_bound(classic: pl.DataFrame, y: np.ndarray, rows: np.ndarray) -> float | None:
    """A reference, not a method: the AUC on `rows` when each cell of (purchase in the sign-up minute, users per
    device, users per IP, counts capped at 5) is scored by its own fraud rate there, labels included."""
    if not {"users_per_device", "users_per_ip"} <= set(classic.columns):
        return None
    cells = classic.select(pl.col("signup_to_purchase_s") <= _INSTANT, pl.col("users_per_device", "users_per_ip").clip(1, 5))
    rate = cells.with_columns(y=pl.Series(y)).filter(pl.Series(rows)).select(
        "y", pl.col("y").mean().over(cells.columns).alias("rate"))
    return round(roc_auc(rate["y"].to_numpy(), rate["rate"].to_numpy()), 4)


def _difference(y: np.ndarray, ours: np.ndarray, other: np.ndarray, resamples: int, seed: int) -> dict[str, Any]:
    """Test AUC of `ours` minus `other`, with a paired bootstrap 95% interval over the test accounts."""
    stacked = np.stack([ours, other], axis=1)
    def gap(labels: np.ndarray, s: np.ndarray) -> float:
        return roc_auc(labels, s[:, 0]) - roc_auc(labels, s[:, 1])

    return {"value": round(gap(y, stacked), 4), "ci95": bootstrap_ci(y, stacked, metric=gap, resamples=resamples, seed=seed)}


def _supervised(classic: pl.DataFrame, groups: dict[str, pl.DataFrame], y: np.ndarray, parts: np.ndarray) -> tuple[np.ndarray, dict]:
    """Our supervised model: LightGBM on the classic features plus the group of extra features whose model
    has the best validation AUC (more features overfit faster when frauds change over time)."""
    best = None
    validation = {}
    for group, extra in groups.items():
        x = pl.concat([classic, extra], how="horizontal").to_numpy().astype(float)
        scores, setting = _lightgbm(x, y, parts)
        validation[group] = round(roc_auc(y[parts == 1], scores[parts == 1]), 4)
        if best is None or validation[group] > validation[best[0]]:
            best = (group, scores, setting)
    return best[1], {"features": best[0], **best[2], "validation_auc_by_features": validation}


def _all_scores(rows: FraudRows, classic: pl.DataFrame, parts: np.ndarray, seed: int) -> tuple[dict, dict, list[str], dict]:
    """Every method's scores of every account, the LightGBM settings, our extra feature names, and the
    unsupervised methods' metrics when fitted on all accounts."""
    y = rows.frame["label"].to_numpy().astype(int)
    table, signals = _signal_table(rows)
    x_generic = _generic_matrix(classic)
    scores = _unsupervised(table, signals, x_generic, parts == 0, seed)
    scores["lightgbm_classic"], classic_setting = _lightgbm(classic.to_numpy().astype(float), y, parts)
    history, ours = history_features(rows.frame), _signal_columns(table, signals, scores["insight_default"], parts == 0)
    extra = pl.concat([history, ours], how="horizontal")
    groups = {"insight score": ours.select("insight_score"), "history": history, "history + insight signals": extra}
    scores["insight_supervised"], our_setting = _supervised(classic, groups, y, parts)
    everyone = np.ones(len(y), dtype=bool)
    all_rows = {name: _metrics(y, s) for name, s in _unsupervised(table, signals, x_generic, everyone, seed).items()}
    return scores, {"lightgbm_classic": classic_setting, "insight_supervised": our_setting}, extra.columns, all_rows


def run_fraud(path: str | Path, *, ip_countries: str | Path | None = None, seed: int = 0, resamples: int = 200,
              now: int | None = None) -> dict[str, Any]:
    """Every method on the time-ordered split of a fraud file, test intervals from `resamples` bootstrap
    draws; the document the CLI prints and saves."""
    rows = read_fraud(path, now=now)
    if rows.frame.height < 20:
        raise DataError(f"has {rows.frame.height} usable rows; the fraud benchmark needs at least 20", path=str(path))
    if ip_countries is not None and "ip_address" in rows.frame.columns:
        rows.frame = _with_country(rows.frame, read_ip_countries(ip_countries))
    elif ip_countries is not None:
        rows.notes.append("--ip-countries given but the file has no ip_address column: country skipped")
    y, parts = rows.frame["label"].to_numpy().astype(int), split_by_time(rows.frame.height)
    if y[parts == 0].min() == y[parts == 0].max():
        raise DataError("the training part has only one class; the supervised models need both", path=str(path))
    classic = classic_features(rows.frame)
    scores, chosen, extra, all_rows = _all_scores(rows, classic, parts, seed)
    methods = {name: _report(y, parts, s) for name, s in scores.items()}
    test = parts == 2
    for name, s in scores.items():
        methods[name]["test"]["roc_auc_ci95"] = bootstrap_ci(y[test], s[test], resamples=resamples, seed=seed)
    best = max(GENERIC, key=lambda m: methods[m]["test"]["roc_auc"])
    return {
        "dataset": str(path), "rows_read": rows.rows_read, "accounts": rows.frame.height, "quarantine": rows.quarantine,
        "time_format": rows.time_format, "notes": rows.notes, "split": _split_summary(rows.frame, parts),
        "classic_features": classic.columns, "extra_features": extra, "methods": methods, "chosen": chosen,
        "all_rows_unsupervised": all_rows, "best_generic_detector": best,
        "margins": {"insight_default_minus_best_generic": _difference(
                        y[test], scores["insight_default"][test], scores[best][test], resamples, seed),
                    "insight_supervised_minus_lightgbm_classic": _difference(
                        y[test], scores["insight_supervised"][test], scores["lightgbm_classic"][test], resamples, seed)},
        "signal_bound_auc": {"test": _signal_bound(classic, y, test), "all_rows": _signal_bound(classic, y, np.ones(len(y), bool))},
        "protocol": "accounts sorted by purchase time: earliest 70% train, next 10% validation, last 20% test; unsupervised "
                    "methods fitted on the training accounts without labels; LightGBM leaves and class weighting picked by "
                    f"validation AUC, trees early-stopped on validation; ROC-AUC (bootstrap 95% interval) and precision@{TOP_SHARE:.0%} "
                    "on the test accounts, ties broken against frauds; counts over the whole file use no labels; "
                    "all_rows_unsupervised: unsupervised methods fitted and scored on every account; signal_bound_auc: each "
                    "cell of (purchase in the sign-up minute, users per device, users per IP) scored by its own fraud rate",
        "seed": seed, "bootstrap_resamples": resamples, "machine": machine_info(), "versions": detector_versions(),
    }


def run_demo_shop(work: str | Path, *, config: DemoShopConfig | None = None, flag_share: float = TOP_SHARE) -> dict[str, Any]:
    """`score_users` on the demo shop's event log (generated under `work`) against its ground-truth bots and
    fraudsters: ROC-AUC of every method, and the flagged users' precision and recall."""
    config = config or DemoShopConfig()
    files = generate_demo_shop(Path(work) / "shop", config)
    events = ingest_files(files.events, name="demo-shop").dataset.events
    truth = pl.read_csv(files.users).select("user_id", "is_bot", "is_fraudster")
    methods, examples = {}, {}
    for method in METHODS:
        scored = score_users(events, method=method, flag_share=flag_share).join(truth, on="user_id")
        bot, fraud = (scored[c].to_numpy() == 1 for c in ("is_bot", "is_fraudster"))
        bad, score, flagged = bot | fraud, scored["anomaly_score"].to_numpy(), scored["flagged"].to_numpy()
        methods[method] = {
            "roc_auc": round(roc_auc(bad, score), 4),
            **{f"roc_auc_{kind}": round(roc_auc(bad[kept], score[kept]), 4) for kind, kept in (("bots", ~fraud), ("fraudsters", ~bot))},
            "flagged": int(flagged.sum()), "precision_at_flagged": round(float(bad[flagged].mean()), 4),
            "recall_at_flagged": round(float(flagged[bad].mean()), 4),
        }
        if method == "default":
            for kind, members in (("bot", bot), ("fraudster", fraud)):
                rows = scored.filter(pl.Series(members & flagged)).head(2)
                examples[kind] = dict(zip(rows["user_id"].to_list(), rows["reasons"].to_list()))
    return {"shop": config.model_dump(mode="json"), "users": int(truth.height), "active_users": events.n_users,
            "bots": int(truth["is_bot"].sum()), "fraudsters": int(truth["is_fraudster"].sum()), "flag_share": flag_share,
            "methods": methods, "reason_examples": examples,
            "protocol": "every user of the ingested event log scored against the others (no labels); ROC-AUC over all "
                        "active users (and bots or fraudsters against regular users); the top flag_share flagged"}
