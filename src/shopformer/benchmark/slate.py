"""Slates over the behaviour Transformer's candidates on the demo shop, with clicks from its ground truth.

A share of the catalog is held out as new items: their events are removed before training, and
they are added to the fitted model afterwards by their text and attributes (`add_items`). Each
round, a regular customer's history is scored, the model's top `candidates` unseen items are the
candidates and a policy shows `slots` of them. A shown item is clicked with probability
examine(slot) x sigmoid(utility(user, item) + CLICK_BIAS), utility being the generator's own
(taste for the item's department, its quality, its price against the user's price sensitivity),
examine(slot) = 1 / (slot + 1)^0.7. Policies: the model's top `slots` by score, the slate bandit
(`policy.slate`), random candidates, and the oracle (the candidates with the highest expected
clicks). Expected clicks of the shown slate are counted, so luck does not enter the comparison.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shopformer.data.codes import FIRST_CODE
from shopformer.data.ingest import ingest_files
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.schema import Catalog, Dataset, EventLog
from shopformer.data.synth import DemoShopConfig, DemoShopFiles, demo_population, generate_demo_shop
from shopformer.data.synth.sessions import utility
from shopformer.policy.slate import SlateBandit, SlateFeatures
from shopformer.predict.estimator import Shopformer
from shopformer.runtime import machine_info

__all__ = ["CLICK_BIAS", "run_slate_simulation"]

CLICK_BIAS = -2.0
_BATCH = 100


def _examine(slots: int) -> np.ndarray:
    return 1.0 / (np.arange(slots) + 1.0) ** 0.7


def _train(files: DemoShopFiles, new_items: set[str], minutes: float, text_cache: Path | None, seed: int) -> Shopformer:
    """Fits on the log without the new items' events, then adds the new items by their features."""
    dataset = ingest_files(files.events, files.catalog, name="demo-shop").dataset
    events = dataset.events.frame.filter(~pl.col("item_id").is_in(list(new_items)))
    known = Dataset(dataset.name, EventLog(events, dataset.events.time_resolution), dataset.catalog)
    model = Shopformer(train={"max_minutes": minutes, "seed": seed, "progress": False, "num_threads": 1},
                       text_cache_dir=text_cache).fit(prepare(known, PrepareConfig()))
    return model.add_items(Catalog(dataset.catalog.frame.filter(pl.col("item_id").is_in(list(new_items)))))


def _candidates(model: Shopformer, users: list[str], n: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Each user's top `n` unseen items (codes) and their scores, and the user's history codes."""
    histories = model.user_histories(users)
    scores = model.score_histories(histories).numpy()
    scores[:, :FIRST_CODE] = -np.inf
    rows = [histories.items[histories.offsets[i]:histories.offsets[i + 1]] for i in range(len(users))]
    rows = [row[row >= FIRST_CODE] for row in rows]  # as the service passes them: known items only
    for row, history in enumerate(rows):
        scores[row, history] = -np.inf
    top = np.argsort(-scores, axis=1)[:, :n]
    return top, np.take_along_axis(scores, top, 1), rows


def _policy_slates(name: str, features: np.ndarray, scores: np.ndarray, attraction: np.ndarray, slots: int,
                   bandit: SlateBandit, rng: np.random.Generator) -> np.ndarray:
    if name == "model top slots":
        return np.argsort(-scores, kind="stable")[:slots]
    if name == "random candidates":
        return rng.choice(len(scores), slots, replace=False)
    if name == "oracle":
        return np.argsort(-attraction, kind="stable")[:slots]
    return bandit.choose(features, slots)


def run_slate_simulation(work: str | Path, *, rounds: int = 20_000, candidates: int = 50, slots: int = 5,
                         new_share: float = 0.1, train_minutes: float = 3.0, config: DemoShopConfig | None = None,
                         text_cache: str | Path | None = None, seed: int = 0) -> dict[str, Any]:
    """Expected clicks per slate and the share of new items shown and clicked, for each policy."""
    work, config = Path(work), config or DemoShopConfig()
    files = DemoShopFiles.under(work / "shop") if (work / "shop" / "ground_truth" / "meta.json").exists() \
        else generate_demo_shop(work / "shop", config)
    catalog, people = demo_population(config)
    item_ids = catalog.frame["item_id"].to_list()
    rng = np.random.default_rng(seed)
    new_items = set(rng.choice(item_ids, int(new_share * len(item_ids)), replace=False).tolist())
    started = time.perf_counter()
    model = _train(files, new_items, train_minutes, Path(text_cache) if text_cache else None, seed)
    train_seconds = time.perf_counter() - started
    regular = np.flatnonzero(people.is_regular)
    user_ids = [f"u{u + 1:05d}" for u in regular]
    known = model.encode_users(user_ids) >= FIRST_CODE
    regular, user_ids = regular[known], [u for u, k in zip(user_ids, known) if k]
    top, top_scores, histories = _candidates(model, user_ids, candidates)
    catalog_index = {item: i for i, item in enumerate(item_ids)}
    code_to_catalog = np.array([catalog_index.get(i, -1) for i in model.item_features.item_ids], dtype=np.int64)
    is_new = np.array([i in new_items for i in model.item_features.item_ids])
    features = SlateFeatures(model.item_vectors())
    attraction = 1 / (1 + np.exp(-(utility(people, catalog, regular[:, None], code_to_catalog[top]) + CLICK_BIAS)))
    examine = _examine(slots)
    names = ("model top slots", "slate bandit", "random candidates", "oracle")
    totals = {name: {"clicks": 0.0, "new_shown": 0, "new_clicks": 0.0, "curve": []} for name in names}
    bandit = SlateBandit(features.dim)
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    for step, row in enumerate(rng.integers(0, len(regular), rounds)):
        phi = features(top_scores[row], top[row], histories[row])
        for name in names:
            shown = _policy_slates(name, phi, top_scores[row], attraction[row] * examine[0], slots, bandit, rng)
            expected = attraction[row, shown] * examine[: len(shown)]
            total = totals[name]
            total["clicks"] += float(expected.sum())
            total["new_shown"] += int(is_new[top[row, shown]].sum())
            total["new_clicks"] += float(expected[is_new[top[row, shown]]].sum())
            if name == "slate bandit":
                clicked = rng.random(len(shown)) < expected
                pending.append((phi[shown], clicked))
        if (step + 1) % _BATCH == 0:
            bandit.update(np.vstack([f for f, _ in pending]), np.concatenate([c for _, c in pending]))
            pending = []
            for name in names:
                totals[name]["curve"].append(round(totals[name]["clicks"], 2))
    return _summary(totals, rounds, slots, candidates, new_share, is_new, train_seconds, model)


def _summary(totals, rounds, slots, candidates, new_share, is_new, train_seconds, model) -> dict[str, Any]:
    oracle = totals["oracle"]["clicks"]
    policies = {name: {"clicks_per_slate": round(t["clicks"] / rounds, 5), "share_of_oracle": round(t["clicks"] / oracle, 4),
                       "new_items_shown_per_slate": round(t["new_shown"] / rounds, 4),
                       "clicks_on_new_items_share": round(t["new_clicks"] / max(t["clicks"], 1e-12), 4),
                       "cumulative_clicks_every_100_rounds": t["curve"]} for name, t in totals.items()}
    return {"rounds": rounds, "slots": slots, "candidates": candidates, "new_item_share_of_catalog": new_share,
            "new_items": int(is_new.sum()), "train_seconds": round(train_seconds, 1),
            "best_epoch": model.training_summary["best_epoch"], "click_model": __doc__.split("Policies:")[0].strip(),
            "policies": policies, "machine": machine_info()}
