"""`shopformer train --launcher ray --workers 2` on a real local Ray: the curve of one process.

Ray is the optional `ray` extra: without it these tests skip, and in CI (`CI` set) they fail
instead. Dropout is off, so both runs train on the same global batches and agree up to the order
of floating-point sums (tests/scale/test_ddp.py says why)."""

from __future__ import annotations

import json
import os

import pytest
import torch
from typer.testing import CliRunner

from shopformer.cli import app
from shopformer.data.ingest import ingest_files
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.errors import ConfigError
from shopformer.predict.estimator import Shopformer

MODEL = {"use_text": False, "dim": 32, "dropout": 0.0, "attention_dropout": 0.0, "transition_weight": 0.0, "neighbour_weight": 0.0}
TRAIN = {"epochs": 3, "batch_size": 32, "warmup_steps": 5, "num_threads": 1, "progress": False}


@pytest.fixture(scope="module")
def ray_train():
    try:
        import ray.train.torch  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Ray Train tests (make test installs the `ray` extra): {exc}")
        pytest.skip(f"Ray Train is the optional `ray` extra ({exc})")
    from shopformer.scale import ray_train

    return ray_train


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return generate_demo_shop(tmp_path_factory.mktemp("shop"), DemoShopConfig(n_users=200, n_items=60, days=14, seed=5))


def _settings(section: str, values: dict) -> list[str]:
    return [part for key, value in values.items() for part in ("--set", f"{section}.{key}={str(value).lower()}")]


def test_two_ray_workers_follow_the_curve_of_one_process(ray_train, shop, tmp_path):
    torch.set_num_threads(1)
    prepared = prepare(ingest_files(shop.events, shop.catalog).dataset, PrepareConfig())
    single = Shopformer(model=MODEL, train=TRAIN).fit(prepared).training_summary["history"]
    out = tmp_path / "bundle"
    result = CliRunner().invoke(app, ["train", str(shop.events), "--catalog", str(shop.catalog), "--out", str(out),
                                      "--launcher", "ray", "--workers", "2", *_settings("model", MODEL), *_settings("train", TRAIN)])
    assert result.exit_code == 0, result.output
    assert "Bundle written to" in result.output
    parallel = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(parallel) == len(single) == 3
    for a, b in zip(single, parallel):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["valid_ndcg@10"] == pytest.approx(a["valid_ndcg@10"], abs=1e-3)
    model = Shopformer.load(out)
    assert model.recommend(users=model.known_users()[:3], k=4).height == 12


def test_bad_ray_settings_fail_before_ray_starts(ray_train, shop, tmp_path):
    prepared = prepare(ingest_files(shop.events, shop.catalog).dataset, PrepareConfig())
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        ray_train.fit_with_ray(prepared, tmp_path / "b", workers=0)
    with pytest.raises(ConfigError, match="differentially private training runs in one process"):
        ray_train.fit_with_ray(prepared, tmp_path / "b", train={"dp_epsilon": 3.0}, workers=2)
    with pytest.raises(ConfigError, match="train"):
        ray_train.fit_with_ray(prepared, tmp_path / "b", train={"epoch": 3}, workers=2)
