"""Bundles trained once per test session on the demo shop, and a real `shopformer serve` process.

The demo shop is generated, ingested and prepared through the normal path (ISO times, everyday
event names), so the service sees real event types, times, titles and categories.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import polars as pl
import pytest
import torch

from shopformer.data.ingest import ingest_files
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.schema import Dataset
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.predict.estimator import Shopformer

API_KEY = "test-key-0123456789"
#: The tasks the prediction-head bundle (`task_bundle`) is fitted for.
TASKS = ("intent", "propensity", "churn")
_TRAIN = {"epochs": 2, "progress": False, "seed": 3, "num_threads": 1}


@dataclass(frozen=True)
class Bundles:
    """A text-aware bundle, an ids-only bundle, the shop's prepared events, where text vectors are
    cached, and the ingested dataset (raw ids and times) the bundles were trained on."""

    text: Path
    ids_only: Path
    events: pl.DataFrame
    cache: Path
    dataset: Dataset


@pytest.fixture(scope="session")
def bundles(tmp_path_factory) -> Bundles:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("serve-bundles")
    files = generate_demo_shop(root / "shop", DemoShopConfig(n_users=400, n_items=300, days=30, seed=5))
    dataset = ingest_files(files.events, files.catalog, name="demo-shop").dataset
    prepared = prepare(dataset, PrepareConfig())
    Shopformer(train=_TRAIN, text_cache_dir=root / "cache" / "text").fit(prepared).save(root / "text-bundle")
    ids_only = {"use_text": False, "use_attributes": False, "use_price": False}
    Shopformer(model=ids_only, train={**_TRAIN, "epochs": 1}).fit(prepared).save(root / "ids-bundle")
    return Bundles(root / "text-bundle", root / "ids-bundle", prepared.events.frame, root / "cache", dataset)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A `shopformer serve` child process on 127.0.0.1."""

    process: subprocess.Popen
    url: str
    log: Path

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def kill(self) -> None:
        """SIGKILL: no shutdown code of the server runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(bundle: Path, store: Path, cache: Path, *extra: str, log: Path) -> Server:
    """Starts the CLI and waits until /healthz answers (or fails with the server's output)."""
    port = free_port()
    command = [sys.executable, "-m", "shopformer", "serve", "--bundle", str(bundle), "--store", str(store),
               "--port", str(port), *extra]
    env = {**os.environ, "SHOPFORMER_CACHE": str(cache)}
    handle = open(log, "ab")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}: {log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return server
        time.sleep(0.3)
    server.stop()
    raise AssertionError(f"server did not answer /healthz within 90 s: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def key_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("key") / "api-key.txt"
    path.write_text(API_KEY + "\n")
    return path


def user_with_history(events: pl.DataFrame, minimum: int = 5, nth: int = 0) -> str:
    """The `nth` user (by id) with at least `minimum` prepared events: a user the bundle knows."""
    counts = events.group_by("user_id").len().filter(pl.col("len") >= minimum).sort("user_id")
    return counts["user_id"][nth]


def event(event_id: str, user: str, item: str, timestamp, event_type: str = "view", **fields) -> dict:
    return {"event_id": event_id, "user_id": user, "item_id": item, "timestamp": timestamp, "event_type": event_type, **fields}


@pytest.fixture(scope="session")
def task_bundle(bundles, tmp_path_factory) -> Path:
    """A copy of the text bundle with logistic prediction heads for every task in `TASKS`."""
    predictor_module = pytest.importorskip("shopformer.predict.tasks", reason="the prediction heads are not built in")
    bundle = tmp_path_factory.mktemp("tasks") / "bundle"
    shutil.copytree(bundles.text, bundle)
    predictor_module.TaskPredictor.fit(bundles.dataset, tasks=TASKS, model="logistic").save(bundle)
    return bundle
