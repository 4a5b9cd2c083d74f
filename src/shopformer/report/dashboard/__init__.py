"""The live dashboard's pages: static HTML, CSS and vanilla JavaScript, served by `shopformer serve` at /dashboard.

The pages hold no data and need no build step or network beyond the service: they read everything
through its JSON API (with the API key the user types in, kept in the browser's session storage).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ASSET_TYPES", "asset_files"]

#: The files served, by suffix, with their media type.
ASSET_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def asset_files() -> dict[str, Path]:
    """Every page, style sheet and script of the dashboard, by file name."""
    folder = Path(__file__).parent
    return {path.name: path for path in sorted(folder.iterdir()) if path.suffix in ASSET_TYPES}
