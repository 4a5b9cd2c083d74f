"""The serving commands `shopformer quickstart` prints at its end work as printed."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.serve.conftest import start_server


@pytest.mark.slow
def test_the_printed_serve_and_curl_commands_work(tmp_path):
    env = {**os.environ, "SHOPFORMER_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-m", "shopformer", "quickstart", "--out", str(tmp_path / "qs"), "--users", "60",
                          "--train-minutes", "0.05"], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    serve = re.search(r"Serve it: (shopformer serve .*)", out.stdout).group(1).split()
    curl = re.search(r"Then: +(curl .*)", out.stdout).group(1)
    bundle = serve[serve.index("--bundle") + 1]
    server = start_server(bundle, tmp_path / "events.sqlite", tmp_path / "cache", log=tmp_path / "server.log")
    try:
        port = server.url.rsplit(":", 1)[1]
        answer = subprocess.run(shlex.split(curl.replace(":8000/", f":{port}/")), capture_output=True, text=True, timeout=60)
        body = json.loads(answer.stdout)
        assert len(body["items"]) == 5 and body["source"] == "model"
    finally:
        server.stop()
