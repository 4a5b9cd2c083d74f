"""Write scikit-uplift's and CausalML's uplift metrics on fixed inputs to a JSON reference file.

Runs in the peer venv (`bash benchmarks/peers/setup_uplift.sh`), never in the project's:

    benchmarks/peers/.venv-uplift/bin/python benchmarks/peers/uplift_reference.py

tests/evaluate/test_uplift_reference.py reads the file and checks `shopformer.evaluate.uplift`
against every number in it, in the project venv, without importing either library.

Cases (one seeded generator, so the file is reproducible):
  distinct   n=2000, binary outcome, 0/1 treatment, distinct scores
  tied       the same users with the scores rounded to 1 decimal (11 distinct values)
  continuous n=500, real-valued outcome, distinct scores (CausalML only: scikit-uplift demands 0/1)
  small      n=20, written out by hand, binary outcome, distinct scores
"""

from __future__ import annotations

import argparse
import json
import platform
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from causalml.metrics import auuc_score, get_cumgain, get_qini, qini_score
from sklift import metrics as sk

SEED = 20240611
KS = (0.1, 0.3)
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "tests" / "evaluate" / "data" / "uplift_reference.json"


def _distinct_scores(rng: np.random.Generator, n: int) -> np.ndarray:
    # Multiples of 1e-6 drawn without replacement: distinct, and their JSON repr is short and exact.
    return rng.choice(10**6, size=n, replace=False) / 10**6


def _binary_outcome(rng: np.random.Generator, treated: np.ndarray, score: np.ndarray) -> np.ndarray:
    # The treatment helps the high scorers and hurts the lowest ones, so the curves bend both ways.
    p = 0.15 + 0.2 * treated * (score - 0.3)
    return (rng.random(len(score)) < p).astype(int)


def make_cases(seed: int = SEED) -> dict[str, dict]:
    """The four input cases: outcome, treated (0/1) and score per user, and which peers apply."""
    rng = np.random.default_rng(seed)
    cases = {}
    treated = rng.integers(0, 2, 2000)
    score = _distinct_scores(rng, 2000)
    outcome = _binary_outcome(rng, treated, score)
    cases["distinct"] = dict(outcome=outcome, treated=treated, score=score)
    # np.round is exact enough here: the JSON holds the rounded floats themselves.
    cases["tied"] = dict(outcome=outcome, treated=treated, score=np.round(score, 1))
    treated = rng.integers(0, 2, 500)
    score = _distinct_scores(rng, 500)
    outcome = np.round(rng.normal(1.0, 1.0, 500) + treated * (score - 0.4), 3)
    cases["continuous"] = dict(outcome=outcome, treated=treated, score=score)
    cases["small"] = _small_case(rng)
    return cases


def _small_case(rng: np.random.Generator) -> dict:
    # Written out best-ranked first (T/C, response 1/0). The top three are treated, so the top 10%
    # holds no control and CausalML's first points are undefined; the rows are then shuffled.
    ranked = "T1 T1 T0 C0 T1 C1 C0 T0 T1 C0 C1 T0 C0 T0 C1 C1 T0 C0 T1 C0".split()
    treated = np.array([u[0] == "T" for u in ranked], dtype=int)
    outcome = np.array([int(u[1]) for u in ranked])
    score = (len(ranked) - 1 - np.arange(len(ranked))) / 20
    order = rng.permutation(len(ranked))
    return dict(outcome=outcome[order], treated=treated[order], score=score[order])


def _floats(a) -> list[float]:
    return [float(v) for v in np.asarray(a, dtype=float)]


def _number(v: float) -> float | None:
    # scikit-uplift returns nan when the top k holds no treated or no control user.
    return None if np.isnan(v) else float(v)


def sklift_reference(y: np.ndarray, t: np.ndarray, s: np.ndarray) -> dict:
    """scikit-uplift's curves (at each distinct score), perfect curves, AUC scores and uplift@k."""
    out = {}
    for name, curve in (("qini_curve", sk.qini_curve), ("uplift_curve", sk.uplift_curve)):
        x, v = curve(y, s, t)
        out[name] = {"x": [int(k) for k in x], "y": _floats(v)}
    for name, curve in (("perfect_qini_curve", sk.perfect_qini_curve), ("perfect_uplift_curve", sk.perfect_uplift_curve)):
        x, v = curve(y, t)
        out[name] = {"x": [int(k) for k in x], "y": _floats(v)}
    out["qini_auc_score"] = float(sk.qini_auc_score(y, s, t))
    out["uplift_auc_score"] = float(sk.uplift_auc_score(y, s, t))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of an empty group, reported as null
        out["uplift_at_k"] = {
            strategy: {str(k): _number(sk.uplift_at_k(y, s, t, strategy=strategy, k=k)) for k in KS} for strategy in ("overall", "by_group")
        }
    return out


def causalml_reference(y: np.ndarray, t: np.ndarray, s: np.ndarray, tied: bool) -> dict:
    """CausalML's Qini and cumulative-gain curves (one point per row) and their scores.

    With tied scores CausalML's row order inside a tie is pandas' unstable sort, so only the curve
    points at the end of each tie block (the same set of users in any order) are kept, and the
    scores, which average over every row, are left out. The normalized curves (the raw ones over
    the absolute last point) are kept for n <= 500 only, so that the file stays small.
    """
    df = pd.DataFrame({"y": y, "w": t, "model": s})
    curves = {"qini": get_qini, "cumgain": get_cumgain}
    rows = np.arange(len(s) + 1)
    if tied:
        ends = np.flatnonzero(np.diff(np.sort(s)[::-1])) + 1
        rows = np.r_[0, ends, len(s)]
    out = {"rows": [int(r) for r in rows]}
    for name, fn in curves.items():
        for normalize in (False, True) if len(s) <= 500 or tied else (False,):
            values = fn(df, "y", "w", normalize=normalize)["model"].to_numpy()
            out[f"get_{name}" + ("_normalized" if normalize else "")] = _floats(values[rows])
    if not tied:
        for name, fn in (("qini_score", qini_score), ("auuc_score", auuc_score)):
            for normalize in (False, True):
                key = name + ("_normalized" if normalize else "")
                out[key] = float(fn(df, "y", "w", normalize=normalize)["model"])
    return out


def versions() -> dict[str, str]:
    names = ("scikit-uplift", "causalml", "scikit-learn", "numpy", "pandas")
    return {"python": platform.python_version(), **{name: version(name) for name in names}}


def build(seed: int = SEED) -> dict:
    """Inputs and reference outputs of every case, plus the library versions."""
    result = {"seed": seed, "versions": versions(), "ks": list(KS), "cases": {}}
    for name, case in make_cases(seed).items():
        y, t, s = case["outcome"], case["treated"], case["score"]
        binary = set(np.unique(y)) <= {0, 1}
        entry = {
            "outcome": [int(v) for v in y] if binary else _floats(y),
            "treated": [int(v) for v in t],
            "score": _floats(s),
            "causalml": causalml_reference(y, t, s, tied=len(np.unique(s)) < len(s)),
        }
        if binary:
            with warnings.catch_warnings():
                # sklift 0.5.1 calls sklearn's deprecated stable_cumsum: a warning, same numbers.
                warnings.simplefilter("ignore", FutureWarning)
                entry["sklift"] = sklift_reference(y, t, s)
        result["cases"][name] = entry
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(build(), separators=(",", ":"))
    args.out.write_text(text + "\n")
    print(f"wrote {args.out} ({len(text) / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
