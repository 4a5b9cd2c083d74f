"""The SparkSession Shopformer's Spark engines run on: local mode by default, or a given master.

Local mode (`local[N]`, the default) runs the executors' Python workers on this interpreter, with
the UI off and as many shuffle partitions as cores, so a session starts in seconds. With another
master (`spark://host:7077`, `yarn`) the cluster's own settings apply and every executor needs
Shopformer installed. Either way the Arrow exchange with Python is on. A session already active in
this process is used as it is. Needs the `spark` extra and a Java 17+ runtime.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shopformer.errors import ConfigError
from shopformer.runtime import physical_cores

__all__ = ["INSTALL_HINT", "JAVA_HINT", "require_spark", "spark_session"]

INSTALL_HINT = "pip install 'shopformer[spark]'"
JAVA_HINT = "Spark needs a Java 17+ runtime and found none (no java on PATH or in JAVA_HOME): apt-get install openjdk-17-jre-headless"


def require_spark():
    """The SparkSession class, once PySpark and a Java runtime are both found; else a `ConfigError` that says what to install."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(f"the spark engine needs PySpark: {INSTALL_HINT}") from None
    home = os.environ.get("JAVA_HOME")
    if not ((home and (Path(home) / "bin" / "java").is_file()) or shutil.which("java")):
        raise ConfigError(JAVA_HINT)
    return SparkSession


def _is_local(master: str | None) -> bool:
    return master is None or master.startswith("local")


def _build(master: str | None, workers: int | None, app_name: str):
    builder = (require_spark().builder.appName(app_name)
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.session.timeZone", "UTC"))
    if _is_local(master):
        cores = workers or physical_cores()
        builder = (builder.master(master or f"local[{cores}]").config("spark.ui.enabled", "false")
                   .config("spark.sql.shuffle.partitions", str(cores)))
        # Executors must import Shopformer: in local mode they run on this very interpreter unless the
        # caller chose one (PySpark reads the worker interpreter from this variable, not from a setting).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # A local session talks to itself only: the loopback address, whatever the host name resolves to.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    else:
        builder = builder.master(master)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


@contextmanager
def spark_session(master: str | None = None, workers: int | None = None, app_name: str = "shopformer") -> Iterator:
    """A SparkSession inside the block: on `master`, else local mode on `workers` cores (default: the
    physical cores), stopped afterwards. A session already active in this process is used as it is
    (a different `master` is then an error)."""
    active = require_spark().getActiveSession()
    if active is not None:
        if master is not None and active.sparkContext.master != master:
            raise ConfigError(f"a Spark session on {active.sparkContext.master} is already running here: it cannot move to {master}")
        yield active
        return
    session = _build(master, workers, app_name)
    try:
        yield session
    finally:
        session.stop()
