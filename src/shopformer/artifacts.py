"""The one versioned header of every file Shopformer saves, and its check on load.

Each saved artefact (bundle, item table, encoder, sequences, prepared dataset, count tables, task
models) starts its JSON with `{"format": "shopformer.<artefact>", "version": N, ...}`. `read_header`
refuses a file of another artefact or of a version this code cannot read with a `DataError` that names
the file and what was expected, instead of a `KeyError` deep inside loading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shopformer.errors import DataError

__all__ = ["header", "read_header", "write_header"]


def header(artefact: str, version: int = 1, /, **fields: Any) -> dict[str, Any]:
    """`{"format": "shopformer.<artefact>", "version": version, **fields}`."""
    return {"format": f"shopformer.{artefact}", "version": version, **fields}


def write_header(path: str | Path, artefact: str, version: int = 1, /, *, indent: int | None = None,
                 **fields: Any) -> Path:
    """Writes `header(artefact, version, **fields)` as JSON to `path`."""
    path = Path(path)
    path.write_text(json.dumps(header(artefact, version, **fields), indent=indent), encoding="utf-8")
    return path


def read_header(path: str | Path, artefact: str, version: int = 1, *, what: str | None = None) -> dict[str, Any]:
    """The JSON document at `path`, checked to be an `artefact` file of `version`.

    Files written before versions were recorded carry none and are read as version 1. `what` names
    the artefact in messages ("Shopformer bundle"; default: the artefact's name).
    """
    path, what = Path(path), what or artefact.replace("_", " ")
    expected = f"shopformer.{artefact}"
    if not path.is_file():
        raise DataError(f"not a {what} folder (no {path.name})", path=str(path.parent), expected=path.name)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"not a {what}: the file is not valid JSON ({exc})", path=str(path), expected=expected) from None
    if not isinstance(document, dict) or document.get("format") != expected:
        raise DataError(f"not a {what}", path=str(path), expected=expected)
    found = document.get("version", 1)
    if found != version:
        raise DataError(f"{what} version {found} is not readable by this Shopformer", path=str(path),
                        expected=f"{expected} version {version}")
    return document
