"""`shopformer serve`: the HTTP service over a bundle, with durable event ingestion."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from shopformer.cli.common import console, reports_errors
from shopformer.errors import ConfigError

DEFAULT_STORE = Path("shopformer-output/serve/events.sqlite")

SERVE_EXAMPLES = """[bold]Examples[/]\n
  shopformer serve --bundle shopformer-output/quickstart/bundle\n
  shopformer serve --bundle bundle/ --port 8080 --store /var/lib/shop/events.sqlite --api-key-file key.txt\n
  shopformer serve --bundle bundle/ --store postgresql://shop@db/events\n
  curl 'http://127.0.0.1:8000/v1/users/u17/recommendations?k=5'
"""


def _api_key(path: Path | None) -> str | None:
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"--api-key-file {path}: no such file")
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise ConfigError(f"--api-key-file {path}: the file is empty (expected the API key on one line)")
    return key


@reports_errors
def serve(
    bundle: Annotated[Path, typer.Option("--bundle", help="Bundle folder written by `shopformer train`.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    store: Annotated[str, typer.Option("--store", help="SQLite file, or a postgresql:// URL (extra `postgres`).")] = str(DEFAULT_STORE),
    api_key_file: Annotated[
        Optional[Path],
        typer.Option("--api-key-file", help="File holding the key that writes, deletes and reloads must send as X-API-Key."),
    ] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Torch threads for scoring.")] = 1,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", min=0.001, help="Largest request body accepted (413 beyond).")] = 4.0,
    max_batch: Annotated[
        int,
        typer.Option("--max-batch", min=1, help="Most recommendation requests scored in one model call (1: no micro-batching)."),
    ] = 64,
) -> None:
    """Serve recommendations, predictions and event ingestion over HTTP (JSON), from one bundle."""
    from shopformer.serve import require_serve_extra

    require_serve_extra()
    import uvicorn

    from shopformer.serve.app import create_app
    from shopformer.serve.service import Service

    key = _api_key(api_key_file)
    with console.status(f"Loading {bundle} and rebuilding the users' states from {store}"):
        service = Service.open(bundle, store, threads=threads, api_key=key, max_batch=max_batch)
    app = create_app(service, max_body_bytes=int(max_body_mb * 1024 * 1024))
    console.print(f"Serving {service.engine.version} on http://{host}:{port} (store: {service.store.location}"
                  f"{', API key required for writes' if key else ''}); docs at http://{host}:{port}/docs")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
