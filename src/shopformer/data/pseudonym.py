"""Keyed pseudonyms of user ids (HMAC-SHA256), so prepared data, bundles and stores hold no raw id.

    pseudonym(raw) = h_n(... h_2(h_1(raw))),   h_k(x) = "ps_" + HMAC-SHA256(key_k, x)[:32 hex]

The key file lives outside the data: one hex key (at least 32 bytes) per line, oldest first. The
chain is what makes rotation possible without raw ids: `shopformer privacy rotate-key` appends a
key, and `shopformer privacy rekey` maps every stored pseudonym p to h_new(p), which is exactly the
pseudonym the longer chain gives the raw id. Looking a user up by raw id goes through the same
chain, so callers keep using the ids they know.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import polars as pl

from shopformer.data.erasure import FORGOTTEN_PREFIX
from shopformer.data.ingest import Ingested
from shopformer.data.prepare import LabelEncoder
from shopformer.data.prepared import PreparedDataset
from shopformer.data.schema import Dataset
from shopformer.errors import ConfigError

__all__ = ["PREFIX", "Pseudonymiser", "new_key", "pseudonymise_dataset", "pseudonymise_ingested",
           "rekey_prepared"]

PREFIX = "ps_"
_MIN_KEY_BYTES = 32
_DIGEST_HEX = 32  # 128 bits: collisions stay out of reach for any number of users


def new_key() -> str:
    """A fresh random key, as the hex line a key file holds."""
    return secrets.token_hex(_MIN_KEY_BYTES)


class Pseudonymiser:
    """The pseudonym of a user id under a chain of keys (oldest first)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ConfigError("a pseudonymisation key file needs at least one key")
        self.keys = tuple(keys)

    @classmethod
    def from_file(cls, path: str | Path) -> Pseudonymiser:
        """The keys of a key file; a missing, empty or malformed file is a `ConfigError` naming it."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"--pseudonymise-key {path}: no such file (create one with `shopformer privacy new-key`)")
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        keys = []
        for number, line in enumerate(lines, 1):
            try:
                key = bytes.fromhex(line)
            except ValueError:
                raise ConfigError(f"--pseudonymise-key {path}, line {number}: not a hex key") from None
            if len(key) < _MIN_KEY_BYTES:
                raise ConfigError(f"--pseudonymise-key {path}, line {number}: the key has {len(key)} bytes, "
                                  f"expected at least {_MIN_KEY_BYTES} (64 hex characters)")
            keys.append(key)
        if not keys:
            raise ConfigError(f"--pseudonymise-key {path}: the file holds no key")
        return cls(keys)

    @staticmethod
    def _step(key: bytes, value: str) -> str:
        return PREFIX + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:_DIGEST_HEX]

    def pseudonym(self, user_id: str) -> str:
        """The pseudonym of a raw user id under the whole chain."""
        value = str(user_id)
        for key in self.keys:
            value = self._step(key, value)
        return value

    def rekey(self, previous: str) -> str:
        """The pseudonym under this chain of one made with the chain without its last key; placeholders
        of forgotten users (`data.erasure.forgotten_placeholder`) stay as they are."""
        return previous if previous.startswith(FORGOTTEN_PREFIX) else self._step(self.keys[-1], previous)

    def stable(self, user_id: str) -> str:
        """The pseudonym under the first key alone: what tombstones remember, since no rotation changes it."""
        return self._step(self.keys[0], str(user_id))

    def previous(self) -> Pseudonymiser:
        """The chain before its last rotation (what existing artefacts were made with)."""
        if len(self.keys) < 2:
            raise ConfigError("the key file has one key: there is no previous key to re-key from")
        return Pseudonymiser(self.keys[:-1])

    def column(self, values: pl.Series, mapping=None) -> pl.Series:
        """`values` with every id replaced by `mapping(id)` (default: its pseudonym); nulls stay null.

        Each distinct id is hashed once, so a log of millions of events costs one HMAC per user.
        """
        mapping = mapping or self.pseudonym
        distinct = values.drop_nulls().unique()
        lookup = dict(zip(distinct.to_list(), (mapping(v) for v in distinct.to_list())))
        return values.replace_strict(lookup, default=None, return_dtype=pl.String).alias(values.name)

    def frame(self, frame: pl.DataFrame, columns: Sequence[str] = ("user_id",), mapping=None) -> pl.DataFrame:
        """`frame` with those of `columns` it has pseudonymised (or re-keyed, with `mapping=self.rekey`)."""
        present = [c for c in columns if c in frame.columns]
        return frame.with_columns(self.column(frame[c].cast(pl.String), mapping) for c in present)


def pseudonymise_dataset(dataset: Dataset, pseudonymiser: Pseudonymiser) -> Dataset:
    """The dataset with its user ids (events and per-user features) replaced by pseudonyms."""
    events = dataset.events.with_frame(pseudonymiser.frame(dataset.events.frame))
    users = None if dataset.users is None else pseudonymiser.frame(dataset.users)
    return replace(dataset, events=events, users=users, info={**dataset.info, "user_ids": "pseudonymised"})


def pseudonymise_ingested(ingested: Ingested, pseudonymiser: Pseudonymiser) -> Ingested:
    """An ingestion outcome whose every copy of a user id (events, quarantined raw rows, preview) is a pseudonym."""
    user_column = [ingested.config.events.user_col]
    result = replace(ingested.result, events=ingested.result.events.with_frame(pseudonymiser.frame(ingested.result.events.frame)),
                     quarantine=pseudonymiser.frame(ingested.result.quarantine, user_column))
    return replace(ingested, dataset=pseudonymise_dataset(ingested.dataset, pseudonymiser), result=result,
                   preview=pseudonymiser.frame(ingested.preview, user_column))


def rekey_prepared(directory: str | Path, pseudonymiser: Pseudonymiser) -> int:
    """Re-keys a prepared dataset saved under the chain before `pseudonymiser`'s last key; returns its users.

    User codes keep their order, so the sequences (codes only) stay valid as they are.
    """
    prepared = PreparedDataset.load(directory)
    rekey = pseudonymiser.rekey
    prepared.events = prepared.events.with_frame(pseudonymiser.frame(prepared.events.frame, mapping=rekey))
    if prepared.users is not None:
        prepared.users = pseudonymiser.frame(prepared.users, mapping=rekey)
    prepared.user_encoder = LabelEncoder.from_classes([rekey(u) for u in prepared.user_encoder.classes.to_list()])
    prepared.save(directory)
    return len(prepared.user_encoder.classes)
