"""`shopformer serve`: the HTTP service over a bundle, with durable event ingestion."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from shopformer.cli.common import PseudonymiseOpt, console, pseudonymiser, reports_errors
from shopformer.errors import ConfigError
from shopformer.serve.limits import DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_WAIT_S

DEFAULT_STORE = Path("shopformer-output/serve/events.sqlite")
DEFAULT_AUDIT_LOG = Path("shopformer-output/serve/audit.jsonl")

SERVE_EXAMPLES = """[bold]Examples[/]\n
  shopformer serve --bundle shopformer-output/quickstart/bundle\n
  shopformer serve --bundle bundle/ --port 8080 --store /var/lib/shop/events.sqlite --api-key-file keys.yaml\n
  shopformer serve --bundle bundle/ --host 0.0.0.0 --api-key-file keys.yaml --bundle-root /srv/bundles\n
  shopformer serve --bundle bundle/ --store postgresql://shop@db/events\n
  shopformer serve --bundle bundle/ --actions actions.yaml   (next best action, decisions in decisions.sqlite)\n
  curl 'http://127.0.0.1:8000/v1/users/u17/recommendations?k=5'
"""


def _access(key_file: Path | None, host: str, insecure: bool, audit_log: Path):
    """The keys and the audit log; no keys on a non-loopback address only with `--insecure`."""
    from shopformer.serve.access import AccessControl, AuditLog, is_loopback, read_key_file

    keys = read_key_file(key_file) if key_file is not None else None
    if keys is None and not is_loopback(host) and not insecure:
        raise ConfigError(f"--host {host} accepts connections from other machines: give --api-key-file with scoped keys, "
                          "or --insecure to serve every endpoint to anyone")
    return AccessControl(keys, AuditLog(audit_log))


@reports_errors
def serve(
    bundle: Annotated[Path, typer.Option("--bundle", help="Bundle folder written by `shopformer train`.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    store: Annotated[str, typer.Option("--store", help="SQLite file, or a postgresql:// URL (extra `postgres`).")] = str(DEFAULT_STORE),
    api_key_file: Annotated[
        Optional[Path],
        typer.Option("--api-key-file", help="API keys sent as X-API-Key: one key on one line (every scope), or YAML "
                                            "`keys:` with name, key, scopes (read, read-personal, write, admin), rate_limit."),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Serve a non-loopback --host without API keys (every endpoint open).")
    ] = False,
    bundle_root: Annotated[
        Optional[Path], typer.Option("--bundle-root", help="Reloads load bundles under this folder only (default: the bundle's parent).")
    ] = None,
    audit_log: Annotated[
        Path, typer.Option("--audit-log", help="Append-only JSON lines of personal-data reads and erasures.")
    ] = DEFAULT_AUDIT_LOG,
    retention_days: Annotated[
        Optional[float], typer.Option("--retention-days", min=0.0, help="Purge stored events older than this, at start and hourly.")
    ] = None,
    pseudonymise_key: PseudonymiseOpt = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Torch threads for scoring.")] = 1,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", min=0.001, help="Largest request body accepted (413 beyond).")] = 4.0,
    max_batch: Annotated[
        int,
        typer.Option("--max-batch", min=1, help="Most recommendation requests scored in one model call (1: no micro-batching)."),
    ] = 64,
    max_in_flight: Annotated[
        int, typer.Option("--max-in-flight", min=1, help="Requests served at once; more wait for a slot (load shedding).")
    ] = DEFAULT_MAX_IN_FLIGHT,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", min=0.0, help="How long a request waits for a slot before a 503 with Retry-After.")
    ] = DEFAULT_MAX_WAIT_S * 1000,
    actions: Annotated[
        Optional[Path], typer.Option("--actions", help="The shop's actions YAML: enables POST /v1/users/{id}/next-best-action.")
    ] = None,
    decision_log: Annotated[
        Optional[Path], typer.Option("--decision-log", help="SQLite file of decisions (default: decisions.sqlite beside the store).")
    ] = None,
) -> None:
    """Serve recommendations, predictions and event ingestion over HTTP (JSON), from one bundle."""
    from shopformer.serve import require_serve_extra

    require_serve_extra()
    import uvicorn

    from shopformer.serve.app import create_app
    from shopformer.serve.service import Service

    access = _access(api_key_file, host, insecure, audit_log)
    with console.status(f"Loading {bundle} and rebuilding the users' states from {store}"):
        service = Service.open(bundle, store, threads=threads, access=access, max_batch=max_batch, bundle_root=bundle_root,
                               retention_days=retention_days, pseudonymiser=pseudonymiser(pseudonymise_key),
                               actions=actions, decision_log=decision_log)
    app = create_app(service, max_body_bytes=int(max_body_mb * 1024 * 1024), max_in_flight=max_in_flight,
                     max_wait_s=max_wait_ms / 1000)
    console.print(f"Serving {service.engine.version} on http://{host}:{port} (store: {service.store.location}"
                  f"{'' if access.open else f', {len(access.keys.keys)} API key(s)'}; audit log {audit_log}); docs at http://{host}:{port}/docs")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
