"""The Hillstrom uplift benchmark on a small file of the same layout, and its input errors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shopformer.benchmark.uplift import read_hillstrom, run_hillstrom
from shopformer.errors import DataError


def _hillstrom(path, n: int = 3000):
    rng = np.random.default_rng(0)
    segment = rng.choice(["Mens E-Mail", "Womens E-Mail", "No E-Mail"], n)
    newbie = rng.integers(0, 2, n)
    visit = (rng.random(n) < 0.1 + 0.2 * (segment != "No E-Mail") * newbie).astype(int)
    pl.DataFrame({"recency": rng.integers(1, 13, n), "history_segment": ["1) $0 - $100"] * n, "history": rng.random(n) * 500,
                  "mens": rng.integers(0, 2, n), "womens": rng.integers(0, 2, n),
                  "zip_code": rng.choice(["Urban", "Rural", "Surburban"], n), "newbie": newbie,
                  "channel": rng.choice(["Web", "Phone"], n), "segment": segment, "visit": visit,
                  "conversion": visit * (rng.random(n) < 0.1), "spend": visit * rng.random(n) * 100}).write_csv(path)
    return path


def test_the_benchmark_reports_every_learner_with_intervals_and_picks_on_validation(tmp_path):
    document = run_hillstrom(_hillstrom(tmp_path / "h.csv"), runs=20)
    assert set(document["learners"]) == {"s", "t", "x", "dr"} and document["best"] in document["validation_qini_coefficient"]
    q = document["learners"][document["best"]]["qini_coefficient"]
    assert q["low"] <= q["value"] <= q["high"] and q["low"] > 0  # the planted effect is found


def test_treatments_select_their_arm_and_bad_input_is_named(tmp_path):
    path = _hillstrom(tmp_path / "h.csv")
    _, treated, _ = read_hillstrom(path, "mens")
    assert 0.4 < treated.mean() < 0.6  # men's e-mail against no e-mail only
    with pytest.raises(DataError, match="treatment must be one of"):
        read_hillstrom(path, "kids")
    pl.DataFrame({"recency": [1]}).write_csv(tmp_path / "bad.csv")
    with pytest.raises(DataError, match="missing column"):
        read_hillstrom(tmp_path / "bad.csv")
