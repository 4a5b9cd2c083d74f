"""`torchrun --nproc-per-node 2 -m shopformer train`: two real gloo processes against one process.

With dropout off nothing random differs between the two runs (causal objective, full softmax):
each step trains on the same global batch, so the loss and validation curves agree up to the
order of floating-point sums. With dropout on, each rank draws its own dropout masks and the
curves differ by chance only (benchmarks/scale_training.py measures by how much).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopformer.cli import app
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.predict.estimator import Shopformer

TORCHRUN = Path(sys.executable).with_name("torchrun")
SETTINGS = ["model.use_text=false", "model.dim=32", "model.dropout=0", "model.attention_dropout=0",
            "train.epochs=3", "train.batch_size=32", "train.warmup_steps=5", "train.num_threads=1", "train.progress=false",
            "model.transition_weight=0", "model.neighbour_weight=0"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return generate_demo_shop(tmp_path_factory.mktemp("shop"), DemoShopConfig(n_users=200, n_items=60, days=14, seed=5))


def _train(launch: list[str], shop, out: Path) -> subprocess.CompletedProcess:
    settings = [part for setting in SETTINGS for part in ("--set", setting)]
    command = [*launch, "-m", "shopformer", "train", str(shop.events), "--catalog", str(shop.catalog), "--out", str(out), *settings]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def _curve(bundle: Path) -> list[dict]:
    return [json.loads(line) for line in (bundle / "metrics.jsonl").read_text().splitlines()]


def test_two_gloo_processes_follow_the_curve_of_one(shop, tmp_path):
    one = _train([sys.executable], shop, tmp_path / "one" / "bundle")
    two = _train([str(TORCHRUN), "--standalone", "--nproc-per-node", "2"], shop, tmp_path / "two" / "bundle")
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("Bundle written to") == 1  # rank 0 alone saves and reports
    single, parallel = _curve(tmp_path / "one" / "bundle"), _curve(tmp_path / "two" / "bundle")
    assert [m["epoch"] for m in parallel] == [1, 2, 3]
    for a, b in zip(single, parallel):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["valid_ndcg@10"] == pytest.approx(a["valid_ndcg@10"], abs=1e-3)
    model = Shopformer.load(tmp_path / "two" / "bundle")
    assert model.training_summary["best_epoch"] == Shopformer.load(tmp_path / "one" / "bundle").training_summary["best_epoch"]
    assert model.recommend(users=model.known_users()[:3], k=5).height == 15


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--workers", "2"], "go with --launcher ray"),
        (["--launcher", "spark"], "--launcher must be one of process, ray"),
        (["--ray-address", "auto"], "go with --launcher ray"),
    ],
)
def test_launcher_flags_are_checked(arguments, message, tmp_path):
    result = CliRunner().invoke(app, ["train", "--demo", "--out", str(tmp_path / "b"), *arguments])
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_world_size_outside_torchrun_is_a_clear_error(monkeypatch, tmp_path):
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = CliRunner().invoke(app, ["train", "--demo", "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "start data-parallel runs with torchrun" in result.output
    assert "Traceback" not in result.output
