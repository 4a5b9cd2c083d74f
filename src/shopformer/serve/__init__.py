"""The real-time service: HTTP API, event ingestion into a durable store, users' sequence states.

    shopformer serve --bundle bundle/ --port 8000 --store events.sqlite --api-key-file key.txt

Needs the `serve` extra (`pip install 'shopformer[serve]'`); `require_serve_extra` says so in one line.
"""

from __future__ import annotations

from shopformer.errors import ShopformerError

__all__ = ["require_serve_extra"]

INSTALL_HINT = "pip install 'shopformer[serve]'"


def require_serve_extra() -> None:
    """Raises a one-line `ShopformerError` naming the install command when FastAPI/uvicorn are missing."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ShopformerError(f"the service needs the serve extra ({exc.name} is missing): {INSTALL_HINT}") from None
