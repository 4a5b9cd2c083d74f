"""Batch scoring on a real local Ray and a real local Spark: the same top-k rows as the local engine.

`make test` installs both (the `ray` and `spark` extras, and Java 17 through
scripts/install-system-packages.sh); elsewhere these tests skip without them, and in CI (`CI` set)
they fail instead of skipping. One Ray and one Spark session serve the whole module."""

from __future__ import annotations

import json
import os
import shutil
import sys

import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from shopformer.cli import app
from shopformer.data.ingest import ingest_files
from shopformer.data.prepared import PrepareConfig, prepare
from shopformer.data.synth import DemoShopConfig, generate_demo_shop
from shopformer.errors import ConfigError
from shopformer.predict.estimator import Shopformer
from shopformer.scale.batch import distributed_job, read_scores, recommendations_checksum, score_users

K = 5


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the Ray and Spark scoring tests (make test installs what they need)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("engines")
    files = generate_demo_shop(root / "shop", DemoShopConfig(n_users=120, n_items=50, days=14, seed=4))
    prepared = prepare(ingest_files(files.events, files.catalog).dataset, PrepareConfig())
    ids_only = {"use_text": False, "use_attributes": False, "use_price": False, "dim": 16, "layers": 1}
    Shopformer(model=ids_only, train={"epochs": 1, "progress": False, "seed": 0}).fit(prepared).save(root / "bundle")
    return root / "bundle"


def _local(bundle, out, users):
    model = Shopformer.load(bundle)
    model.train_config.num_threads = 1
    return score_users(model, out, users, k=K)


@pytest.fixture(scope="module")
def ray_engine():
    try:
        import ray.data  # noqa: F401
    except ImportError as exc:
        _unavailable(f"Ray Data is the optional `ray` extra ({exc})")
    from shopformer.scale.ray_score import local_ray

    with local_ray(workers=2):
        yield


@pytest.fixture(scope="module")
def spark_engine():
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        _unavailable(f"PySpark is the optional `spark` extra ({exc})")
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        _unavailable("Spark needs a Java runtime (openjdk-17-jre-headless)")
    from shopformer.scale.spark_session import spark_session

    with spark_session(workers=2):
        yield


@pytest.fixture(params=["ray", "spark"])
def engine(request):
    request.getfixturevalue(f"{request.param}_engine")
    return request.param


def test_each_engine_writes_the_local_rows_as_parts_over_an_earlier_run(engine, bundle, tmp_path):
    users = Shopformer.load(bundle).known_users()
    listed = [*reversed(users), users[0], "never-seen"]  # any order, a duplicate, an unknown user (popular items)
    (tmp_path / "users.txt").write_text("\n".join(listed) + "\n")
    expected = _local(bundle, tmp_path / "local.parquet", listed)
    out = tmp_path / "recs.parquet"
    out.mkdir()
    shutil.copy(expected["out"], out / "part-00000-stale.parquet")  # the parts of an earlier run are replaced
    (out / "_SUCCESS").touch()
    result = CliRunner().invoke(app, ["score", "--bundle", str(bundle), "--users", str(tmp_path / "users.txt"), "-k", str(K),
                                      "--chunk", "64", "--engine", engine, "--workers", "2", "--out", str(out),
                                      "--json", str(tmp_path / "score.json")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "score.json").read_text())
    assert summary["engine"] == engine and summary["workers"] == 2 and summary["rows_per_s"] > 0 and f"{engine})" in result.output
    assert (summary["users"], summary["rows"], summary["checksum"]) == (len(users) + 1, expected["rows"], expected["checksum"])
    parts = list(out.glob("*.parquet"))
    assert out / "part-00000-stale.parquet" not in parts and len(parts) >= 2  # a folder of parts, from both workers
    written = read_scores(out).sort("user_id", "rank")
    local = pl.read_parquet(expected["out"]).sort("user_id", "rank")
    assert written.columns == local.columns == ["user_id", "item_id", "score", "rank"]
    assert written.select("user_id", "item_id", "rank").equals(local.select("user_id", "item_id", "rank"))
    assert (written["score"] - local["score"]).abs().max() < 1e-4
    assert recommendations_checksum(written) == summary["checksum"]


def test_distributed_output_must_be_a_folder_of_parts(bundle, tmp_path):
    (tmp_path / "recs.parquet").write_bytes(b"")
    with pytest.raises(ConfigError, match="is a file"):
        distributed_job(bundle, tmp_path / "recs.parquet", None)
    (tmp_path / "mine.parquet").mkdir()
    (tmp_path / "mine.parquet" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match=r"holds other files \(notes.txt\)"):
        distributed_job(bundle, tmp_path / "mine.parquet", None)
    assert (tmp_path / "mine.parquet" / "notes.txt").exists()
    with pytest.raises(ConfigError, match="no users to score"):
        distributed_job(bundle, tmp_path / "new.parquet", [])


def test_missing_engine_packages_give_an_install_hint(bundle, tmp_path, monkeypatch):
    from shopformer.scale.ray_score import score_users_ray
    from shopformer.scale.spark_score import score_users_spark

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    with pytest.raises(ConfigError, match=r"pip install 'shopformer\[ray\]'"):
        score_users_ray(bundle, tmp_path / "ray.parquet")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(ConfigError, match="Java 17.*apt-get install openjdk-17-jre-headless"):
        score_users_spark(bundle, tmp_path / "spark.parquet")
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(ConfigError, match=r"pip install 'shopformer\[spark\]'"):
        score_users_spark(bundle, tmp_path / "spark.parquet")
    assert not any(tmp_path.iterdir())  # nothing read or written before the engine is known to be there


@pytest.mark.parametrize("arguments, message", [
    (["--engine", "dask"], "Invalid value for '--engine'"),
    (["--engine", "spark", "--users", "nobody.txt"], "give `all` or a file of user ids"),
    (["--workers", "2"], "--workers applies to --engine ray or spark"),
    (["--engine", "spark", "--ray-address", "auto"], "--ray-address applies to --engine ray only"),
    (["--engine", "ray", "--spark-master", "local[2]"], "--spark-master applies to --engine spark only"),
])
def test_cli_rejects_bad_engines_and_options(bundle, tmp_path, arguments, message):
    result = CliRunner().invoke(app, ["score", "--bundle", str(bundle), "--out", str(tmp_path / "recs.parquet"), *arguments])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "recs.parquet").exists()
