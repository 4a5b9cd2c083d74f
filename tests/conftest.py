"""Shared test fixtures: where the real public datasets are, skipping cleanly when they are absent."""

from __future__ import annotations

from pathlib import Path

import pytest

DATASETS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def dataset_path(name: str) -> Path:
    """Folder of a shared real dataset; skips the calling test when it is not on this machine."""
    path = DATASETS_DIR / name
    if not path.is_dir():
        pytest.skip(f"real dataset '{name}' not found at {path} (the shared datasets folder is absent)")
    return path
