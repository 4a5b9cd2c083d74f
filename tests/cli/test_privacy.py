"""Pseudonymised user ids end to end: no raw id in any artefact, and a key rotation that changes nothing a user sees."""

from __future__ import annotations

import re
import time
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shopformer.cli import app
from shopformer.data.pseudonym import Pseudonymiser
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.serve.access import AccessControl, AuditLog
from shopformer.serve.app import create_app
from shopformer.serve.service import Service

runner = CliRunner()
QUICK = ["--set", "train.epochs=1", "--set", "model.dim=16", "--set", "model.use_text=false", "--set", "train.progress=false"]


def _run(*arguments: str) -> str:
    result = runner.invoke(app, [str(a) for a in arguments])
    assert result.exit_code == 0, result.output
    return result.output


def _raw_ids_in(folder: Path, raw_ids: set[str]) -> dict[str, set[str]]:
    """Raw user ids found in each file under `folder`: Parquet decoded, every other file read as bytes."""
    pattern = re.compile("|".join(sorted(raw_ids, key=len, reverse=True)))
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            text = pl.read_parquet(path).cast(pl.String).write_csv()
        else:
            text = path.read_bytes().decode("utf-8", "replace")
        hits = set(pattern.findall(text))
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("privacy")
    files = generate_demo_shop(root / "shop", DemoShopConfig(n_users=150, seed=3))
    _run("privacy", "new-key", "--out", root / "keys" / "users.key")
    raw_ids = set(pl.read_csv(files.events, columns=["user_id"])["user_id"].drop_nulls().to_list())
    return root, files, root / "keys" / "users.key", raw_ids


@pytest.fixture(scope="module")
def artefacts(shop):
    """A prepared dataset, a bundle with task models, and a store and audit log filled through the service."""
    root, files, key, raw_ids = shop
    out = root / "out"
    _run("data", "prepare", files.events, "--catalog", files.catalog, "--pseudonymise-key", key, "--out", out / "prepared")
    _run("train", files.events, "--catalog", files.catalog, "--pseudonymise-key", key, "--out", out / "bundle", *QUICK)
    _run("train-tasks", files.events, "--catalog", files.catalog, "--pseudonymise-key", key, "--bundle", out / "bundle",
         "--model", "logistic", "--tasks", "churn")
    user, item = sorted(raw_ids)[0], pl.read_csv(files.catalog)["item_id"][0]
    service = Service.open(out / "bundle", out / "serve" / "events.sqlite", pseudonymiser=Pseudonymiser.from_file(key),
                           access=AccessControl(None, AuditLog(out / "serve" / "audit.jsonl")))
    with TestClient(create_app(service)) as client:
        posted = {"event_id": "live-1", "user_id": user, "item_id": item, "timestamp": int(time.time()) - 5, "event_type": "cart"}
        assert client.post("/v1/events", json={"events": [posted]}).json()["stored"] == 1
        answers = {path: client.get(f"/v1/users/{user}/{path}") for path in ("events", "state", "predictions", "export")}
        recommended = client.get(f"/v1/users/{user}/recommendations").json()
    return out, user, answers, recommended


def test_no_artefact_holds_a_raw_user_id(shop, artefacts):
    root, _, _, raw_ids = shop
    out, _, _, _ = artefacts
    assert "events.csv" in _raw_ids_in(root / "shop", raw_ids)  # the scan finds raw ids where they are
    assert (out / "prepared" / "ingest" / "quarantine.csv").is_file() and (out / "bundle" / "tasks" / "events.parquet").is_file()
    assert _raw_ids_in(out, raw_ids) == {}


def test_the_service_answers_by_raw_id_through_the_same_keyed_hash(artefacts):
    _, user, answers, recommended = artefacts
    assert all(answer.status_code == 200 for answer in answers.values()), {p: a.text for p, a in answers.items()}
    stored = answers["events"].json()["events"]
    assert [e["event_id"] for e in stored] == ["live-1"] and stored[0]["user_id"].startswith("ps_")
    assert answers["state"].json()["known"] is True and recommended["source"] == "model"
    assert recommended["user_id"] == user and set(answers["predictions"].json()["predictions"]) == {"churn"}


def test_rotation_rekeys_without_raw_ids_and_keeps_recommendations(shop, artefacts):
    root, _, key, raw_ids = shop
    out, user, _, _ = artefacts
    users = sorted(raw_ids)[:5]
    flags = [arg for u in users for arg in ("--user", u)]
    _run("recommend", "--bundle", out / "bundle", *flags, "--pseudonymise-key", key, "--out", root / "before.csv")
    _run("privacy", "rotate-key", "--key-file", key)
    _run("privacy", "rekey", "--key-file", key, "--bundle", out / "bundle", "--prepared", out / "prepared",
         "--store", out / "serve" / "events.sqlite")
    _run("recommend", "--bundle", out / "bundle", *flags, "--pseudonymise-key", key, "--out", root / "after.csv")
    assert (root / "before.csv").read_text() == (root / "after.csv").read_text()
    predicted = _run("predict", "churn", "--bundle", out / "bundle", "--user", user, "--pseudonymise-key", key, "--out", root / "churn.csv")
    assert "1 rows" in predicted and pl.read_csv(root / "churn.csv")["user_id"].to_list() == [user]
    rotated = Pseudonymiser.from_file(key)
    assert len(rotated.keys) == 2
    prepared_users = set(pl.read_parquet(out / "prepared" / "events.parquet")["user_id"].to_list())
    assert rotated.pseudonym(user) in prepared_users and rotated.previous().pseudonym(user) not in prepared_users
    service = Service.open(out / "bundle", out / "serve" / "events.sqlite", pseudonymiser=rotated)
    with TestClient(create_app(service)) as client:
        assert [e["event_id"] for e in client.get(f"/v1/users/{user}/events").json()["events"]] == ["live-1"]
    assert _raw_ids_in(out, raw_ids) == {}


def test_tombstones_of_pseudonymised_users_survive_later_rotations(shop, artefacts):
    root, files, key, raw_ids = shop
    out, user, _, _ = artefacts
    _run("privacy", "forget", "--user", user, "--pseudonymise-key", key, "--tombstones", root / "forgotten.txt",
         "--prepared", out / "prepared")
    _run("privacy", "rotate-key", "--key-file", key)  # a rotation after the erasure
    _run("data", "prepare", files.events, "--catalog", files.catalog, "--pseudonymise-key", key,
         "--tombstones", root / "forgotten.txt", "--out", root / "prepared-later")
    later = set(pl.read_parquet(root / "prepared-later" / "events.parquet")["user_id"].to_list())
    assert Pseudonymiser.from_file(key).pseudonym(user) not in later and len(later) == len(raw_ids) - 1


def test_bad_key_files_are_clear_errors(tmp_path):
    short = tmp_path / "short.key"
    short.write_text("abcd\n")
    result = runner.invoke(app, ["data", "prepare", str(tmp_path / "x.csv"), "--pseudonymise-key", str(short), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "at least 32" in result.output
    result = runner.invoke(app, ["privacy", "rekey", "--key-file", str(tmp_path / "missing.key"), "--bundle", str(tmp_path)])
    assert result.exit_code == 2 and "no such file" in result.output
    one = tmp_path / "one.key"
    _run("privacy", "new-key", "--out", one)
    result = runner.invoke(app, ["privacy", "rekey", "--key-file", str(one), "--bundle", str(tmp_path)])
    assert result.exit_code == 2 and "no previous key" in result.output
