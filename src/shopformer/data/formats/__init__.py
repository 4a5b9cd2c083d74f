"""Readers for public e-commerce data formats; each returns a `Dataset`.

`FORMATS` maps a format name to its reader; `read_dataset("s3rec", events_path=...)` picks one by name
(e.g. from a config file or the CLI). Readers are imported on first use, so one format's module
(or a missing optional dependency of it) does not slow down or break the others.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, Callable

from shopformer.data.schema import Dataset
from shopformer.errors import ConfigError


class LazyReader:
    """A reader function named by module and attribute, imported when first called."""

    def __init__(self, module: str, function: str) -> None:
        self.module, self.function = module, function
        self._loaded: Callable[..., Dataset] | None = None

    def load(self) -> Callable[..., Dataset]:
        if self._loaded is None:
            try:
                self._loaded = getattr(importlib.import_module(self.module), self.function)
            except ImportError as err:
                raise ConfigError(f"the reader {self.module}.{self.function} cannot be loaded: {err}") from err
        return self._loaded

    def __call__(self, *args: Any, **kwargs: Any) -> Dataset:
        return self.load()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<reader {self.module}.{self.function}>"


_PACKAGE = __name__

FORMATS: dict[str, LazyReader] = {
    "s3rec": LazyReader(f"{_PACKAGE}.s3rec", "read_s3rec"),
    "recbole": LazyReader(f"{_PACKAGE}.recbole", "read_recbole"),
    "sessions": LazyReader(f"{_PACKAGE}.sessions", "read_session_lists"),
    "taobao": LazyReader(f"{_PACKAGE}.taobao", "read_taobao"),
    "yoochoose": LazyReader(f"{_PACKAGE}.yoochoose", "read_yoochoose"),
    "online-retail": LazyReader(f"{_PACKAGE}.online_retail", "read_online_retail"),
    "otto": LazyReader(f"{_PACKAGE}.otto", "read_otto"),
}


def read_dataset(format: str, path: str | Path | None = None, **paths: str | Path | None) -> Dataset:
    """Read a dataset with the reader registered under `format`, passing `paths` (and options) to it.

    `path`, when given, is the format's main file (the reader's first argument).

    >>> read_dataset("taobao", edges_path="ecomm_edge_train.txt")  # doctest: +SKIP
    >>> read_dataset("s3rec", "Beauty.txt", item_attributes_path="Beauty_item2attributes.json")  # doctest: +SKIP
    """
    if format not in FORMATS:
        raise ConfigError(f"unknown data format '{format}'; known formats: {', '.join(sorted(FORMATS))}")
    reader = FORMATS[format].load()
    signature = inspect.signature(reader)
    if path is not None:
        paths = {next(iter(signature.parameters)): path, **paths}
    try:
        signature.bind(**paths)
    except TypeError as err:
        raise ConfigError(f"format '{format}' takes {_describe(signature)}: {err}") from None
    return reader(**paths)


def _describe(signature: inspect.Signature) -> str:
    required = [name for name, p in signature.parameters.items() if p.default is inspect.Parameter.empty]
    optional = [name for name, p in signature.parameters.items() if p.default is not inspect.Parameter.empty]
    return f"{', '.join(required)}" + (f" (optional: {', '.join(optional)})" if optional else "")


__all__ = ["FORMATS", "LazyReader", "read_dataset"]
