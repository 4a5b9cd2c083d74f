"""Logged bandit feedback: what a policy showed, where, with which probability, and what happened.

One row per impression: the context seen, the action (item) chosen, its slot in the slate
(position), the reward (click), and the logging policy's probability of that choice at that slot
(propensity), the quantity off-policy evaluation needs. `read_open_bandit` reads the Open Bandit
Dataset's CSV layout (Saito et al., 2020): `<campaign>.csv` and `item_context.csv` per campaign folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from shopformer.errors import DataError

__all__ = ["BanditLog", "read_open_bandit"]

_REQUIRED = ("item_id", "position", "click", "propensity_score")


@dataclass(frozen=True)
class BanditLog:
    """Logged feedback of one policy. Positions are 0-based; `action_context` has one row per action."""

    context: np.ndarray
    actions: np.ndarray
    positions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    action_context: np.ndarray
    name: str = ""

    @property
    def n_rounds(self) -> int:
        return len(self.actions)

    @property
    def n_actions(self) -> int:
        return len(self.action_context)

    @property
    def len_list(self) -> int:
        return int(self.positions.max()) + 1

    def rows(self, index: np.ndarray) -> BanditLog:
        """The log restricted to (or resampled at) `index`."""
        return BanditLog(self.context[index], self.actions[index], self.positions[index], self.rewards[index],
                         self.propensities[index], self.action_context, self.name)


def _one_hot(frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """Categorical columns one-hot, the first level in sorted order dropped (a fixed reference level)."""
    parts = []
    for column in columns:
        levels = sorted(frame[column].cast(pl.String).unique().drop_nulls().to_list())[1:]
        parts.append(np.column_stack([(frame[column].cast(pl.String) == level).to_numpy() for level in levels])
                     if levels else np.zeros((frame.height, 0)))
    return np.hstack(parts).astype(np.float64) if parts else np.zeros((frame.height, 0))


def read_open_bandit(folder: str | Path) -> BanditLog:
    """One campaign folder of the Open Bandit Dataset (e.g. `random/all/`): context = user features
    one-hot; action context = `item_feature_0` as a number and the other item features one-hot."""
    folder = Path(folder)
    logs = [p for p in sorted(folder.glob("*.csv")) if p.name != "item_context.csv"]
    if len(logs) != 1 or not (folder / "item_context.csv").is_file():
        raise DataError(f"{folder}: expected one <campaign>.csv and item_context.csv (Open Bandit Dataset layout)")
    log, items = pl.read_csv(logs[0]), pl.read_csv(folder / "item_context.csv")
    missing = [c for c in _REQUIRED if c not in log.columns]
    if missing:
        raise DataError(f"{logs[0]}: missing column(s) {missing}; found {log.columns[:8]}")
    _check_values(log, logs[0])
    user_columns = [c for c in log.columns if c.startswith("user_feature")]
    item_columns = [c for c in items.columns if c.startswith("item_feature")]
    numeric = [c for c in item_columns if items[c].dtype.is_numeric()]
    categorical = [c for c in item_columns if c not in numeric]
    items = items.sort("item_id")
    if items["item_id"].to_list() != list(range(items.height)):
        raise DataError(f"{folder / 'item_context.csv'}: item ids must be 0 .. {items.height - 1}, one row each")
    if int(log["item_id"].max()) >= items.height:
        raise DataError(f"{logs[0]}: item id {int(log['item_id'].max())} has no row in item_context.csv")
    log = log.sort("timestamp") if "timestamp" in log.columns else log  # rounds in time order
    action_context = np.hstack([items.select(numeric).to_numpy().astype(np.float64), _one_hot(items, categorical)])
    return BanditLog(context=_one_hot(log, user_columns), actions=log["item_id"].to_numpy().astype(np.int64),
                     positions=log["position"].to_numpy().astype(np.int64) - 1, rewards=log["click"].to_numpy().astype(np.float64),
                     propensities=log["propensity_score"].to_numpy().astype(np.float64), action_context=action_context,
                     name=f"{folder.parent.name}/{folder.name}")


def _check_values(log: pl.DataFrame, path: Path) -> None:
    checks = {"propensity_score": (pl.col("propensity_score") <= 0) | (pl.col("propensity_score") > 1),
              "click": ~pl.col("click").is_in([0, 1]), "position": pl.col("position") < 1, "item_id": pl.col("item_id") < 0}
    for column, bad in checks.items():
        rows = log.with_row_index("row").filter(bad | pl.col(column).is_null())
        if rows.height:
            row = int(rows["row"][0]) + 2  # the header is line 1
            raise DataError(f"{path}, row {row}, column '{column}': {rows[column][0]!r} is out of range "
                            f"(propensity in (0, 1], click 0/1, position >= 1, item id >= 0)")
