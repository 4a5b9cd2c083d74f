"""`shopformer privacy forget`: a user erased from the store, a bundle, a prepared dataset and every later run."""

from __future__ import annotations

import json
import time

import polars as pl
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shopformer import Shopformer
from shopformer.cli import app
from shopformer.data.prepared import PreparedDataset
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.serve.app import create_app
from shopformer.serve.service import Service

runner = CliRunner()
QUICK = ["--set", "train.epochs=1", "--set", "model.dim=16", "--set", "model.use_text=false", "--set", "train.progress=false"]


def _run(*arguments) -> str:
    result = runner.invoke(app, [str(a) for a in arguments])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def erased(tmp_path_factory):
    root = tmp_path_factory.mktemp("forget")
    files = generate_demo_shop(root / "shop", DemoShopConfig(n_users=120, seed=5))
    _run("data", "prepare", files.events, "--catalog", files.catalog, "--out", root / "prepared")
    _run("train", files.events, "--catalog", files.catalog, "--out", root / "bundle", *QUICK)
    _run("train-tasks", files.events, "--catalog", files.catalog, "--bundle", root / "bundle", "--model", "logistic", "--tasks", "churn")
    events = pl.read_parquet(root / "prepared" / "events.parquet")
    user = events.group_by("user_id").len().sort("len", "user_id", descending=[True, False])["user_id"][0]
    item = events["item_id"][0]
    with TestClient(create_app(Service.open(root / "bundle", root / "events.sqlite"))) as client:
        posted = {"event_id": "f-1", "user_id": user, "item_id": item, "timestamp": int(time.time()) - 5, "event_type": "view"}
        assert client.post("/v1/events", json={"events": [posted]}).json()["stored"] == 1
    _run("privacy", "forget", "--user", user, "--tombstones", root / "forgotten.txt", "--bundle", root / "bundle",
         "--prepared", root / "prepared", "--store", root / "events.sqlite", "--report", root / "erasure.json")
    return root, files, user


def test_the_erasure_report_lists_every_place(erased):
    root, _, user = erased
    (entry,) = json.loads((root / "erasure.json").read_text())["users"]
    places = entry["erased_from"]
    assert entry["user_id"] == user and places["event store events"] == 1
    assert places["bundle history events"] > 0 and places["bundle task-log events"] > 0 and places["prepared dataset events"] > 0
    assert places["tombstone"] == str(root / "forgotten.txt")


def test_the_user_is_gone_from_the_bundle_the_prepared_data_and_the_store(erased):
    root, _, user = erased
    prepared = PreparedDataset.load(root / "prepared")
    assert user not in prepared.events.frame["user_id"].to_list()
    assert user not in prepared.user_encoder.classes.to_list()
    assert len(prepared.sequences) == prepared.events.frame["user_id"].n_unique()
    assert user not in (root / "bundle" / "users.json").read_text()
    assert user not in pl.read_parquet(root / "bundle" / "tasks" / "events.parquet")["user_id"].to_list()
    model = Shopformer.load(root / "bundle")
    assert model.recommend(users=[user], k=3)["source"].to_list() == ["popular"] * 3
    with TestClient(create_app(Service.open(root / "bundle", root / "events.sqlite"))) as client:
        assert client.get(f"/v1/users/{user}/export").json() == {"user_id": user, "stored_events": [], "model_history": [],
                                                                 "forgotten": True, "decisions": []}


def test_later_runs_leave_the_forgotten_user_out(erased):
    root, files, user = erased
    output = _run("data", "prepare", files.events, "--catalog", files.catalog, "--tombstones", root / "forgotten.txt",
                  "--out", root / "prepared-again")
    assert "events of forgotten users left out" in output
    assert user not in pl.read_parquet(root / "prepared-again" / "events.parquet")["user_id"].to_list()
    _run("train", files.events, "--catalog", files.catalog, "--tombstones", root / "forgotten.txt", "--out", root / "retrained", *QUICK)
    assert user not in (root / "retrained" / "users.json").read_text()
