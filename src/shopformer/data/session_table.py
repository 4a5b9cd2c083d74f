"""A table with one row per session (e.g. UCI Online Shoppers Purchasing Intention) and a yes/no label.

Read by the same reader as event files (CSV/TSV with the delimiter detected, Parquet, JSON Lines;
every value a string first). Columns are typed from their values: all numbers -> numeric;
all TRUE/FALSE (or yes/no) -> numeric 0/1; anything else, and the columns named `categorical` (codes
such as a browser id), -> categorical. The label column must hold two values of TRUE/FALSE, 1/0
or yes/no (any case). Bad input stops with the file, row and column and what was expected: a
missing label column, a non-binary or empty label, a row with the wrong number of fields, a
mostly-numeric column with a stray non-number, an id-like column with a new value on every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from shopformer.data.io import read_table
from shopformer.errors import DataError

__all__ = ["SessionTable", "read_session_table"]

_TRUE_WORDS, _FALSE_WORDS = ("true", "yes"), ("false", "no")
#: Label spellings: the words, or 1/0 (as integers or as floats).
_TRUE, _FALSE = (*_TRUE_WORDS, "1", "1.0"), (*_FALSE_WORDS, "0", "0.0")
#: A column whose non-empty values are at least this share numbers is numeric: the rest are errors.
_MOSTLY_NUMERIC = 0.9
#: Below this many rows a categorical column with a new value on every row is not suspicious.
_ID_LIKE_MIN_ROWS = 50


@dataclass(frozen=True)
class SessionTable:
    """Typed feature columns (numeric Float64, categorical String), the 0/1 labels and where they came from."""

    name: str
    features: pl.DataFrame
    labels: np.ndarray
    label: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return self.features.height

    def take(self, rows: np.ndarray) -> SessionTable:
        """The table restricted to `rows` (indices), e.g. one split."""
        return SessionTable(self.name, self.features[rows], self.labels[rows], self.label, self.numeric,
                            self.categorical, self.source)


def read_session_table(path: str | Path, label: str, *, categorical: Sequence[str] = (), drop: Sequence[str] = (),
                       delimiter: str | None = None, encoding: str = "utf-8") -> SessionTable:
    """Read a one-row-per-session table; `label` names the yes/no column, `drop` columns to leave out."""
    raw = read_table(path, delimiter=delimiter, encoding=encoding)
    source = str(path)
    if raw.ragged.height:
        first = raw.ragged.row(0, named=True)
        raise DataError("has a different number of fields than the header", path=source, row=first["__row__"],
                        expected=f"{len(raw.columns)} fields", found=first["__line__"][:200])
    named = [label, *categorical, *drop]
    missing = [name for name in named if name not in raw.columns]
    if missing:
        role = "label" if missing[0] == label else "named"
        raise DataError(f"has no {role} column '{missing[0]}'; its columns are {', '.join(raw.columns)}",
                        path=source, column=missing[0])
    labels = _labels(raw.frame, label, source)
    columns = [c for c in raw.columns if c not in (label, *drop)]
    if not columns:
        raise DataError("has no feature column besides the label", path=source, expected="at least one more column")
    typed, numeric, categories = [], [], []
    for column in columns:
        values = raw.frame[column]
        if column in categorical:
            typed.append(values)
        else:
            typed.append(_typed(values, raw.frame["__row__"], source))
        (numeric if typed[-1].dtype == pl.Float64 else categories).append(column)
    for column in categories:
        _refuse_id_like(raw.frame, column, source)
    return SessionTable(Path(path).stem, pl.DataFrame(typed), labels, label, tuple(numeric), tuple(categories), source)


def _labels(frame: pl.DataFrame, label: str, source: str) -> np.ndarray:
    """The label column as 0/1; an empty or other value is an error at its row."""
    text = frame[label].str.to_lowercase()
    bad = frame.filter(~text.is_in([*_TRUE, *_FALSE]) | text.is_null())
    if bad.height:
        raise DataError("the label is not a yes/no value", path=source, row=bad["__row__"][0], column=label,
                        expected="TRUE/FALSE, 1/0 or yes/no", found=str(bad[label][0]))
    labels = text.is_in(_TRUE).cast(pl.Int64).to_numpy()
    if labels.min() == labels.max():
        raise DataError(f"the label has only the value {frame[label][0]!r}", path=source, column=label,
                        expected="both classes")
    return labels


def _typed(values: pl.Series, rows: pl.Series, source: str) -> pl.Series:
    """A numeric (or TRUE/FALSE) column as Float64; anything else stays a categorical String column."""
    present = values.drop_nulls()
    lower = present.str.to_lowercase()
    if present.len() and lower.is_in([*_TRUE_WORDS, *_FALSE_WORDS]).all():
        return values.str.to_lowercase().is_in(_TRUE).cast(pl.Float64).alias(values.name)
    numbers = values.cast(pl.Float64, strict=False)
    stray = values.is_not_null() & numbers.is_null()
    if not stray.any():
        return numbers
    if present.len() and 1 - stray.sum() / present.len() >= _MOSTLY_NUMERIC:
        at = int(stray.arg_true()[0])
        raise DataError("is not a number in a numeric column", path=source, row=rows[at], column=values.name,
                        expected="a number (or an empty cell)", found=values[at])
    return values


def _refuse_id_like(frame: pl.DataFrame, column: str, source: str) -> None:
    """A categorical column with a new value on (nearly) every row is an id: it cannot generalise."""
    if frame.height >= _ID_LIKE_MIN_ROWS and frame[column].n_unique() > 0.9 * frame.height:
        raise DataError("has a different value on nearly every row (an id?)", path=source, column=column,
                        expected="a feature; leave an id column out with --drop")
