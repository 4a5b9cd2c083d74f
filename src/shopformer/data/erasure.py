"""Erasure that reaches every copy: tombstones of forgotten users, applied to saved and future data.

A forgotten user is remembered only as `user_hash(id)` (a one-way hash): in the event store's
`forgotten` table and in a tombstone file, one hash per line, that `data prepare`, `train` and
`train-tasks` read through `--tombstones` so that no later training run sees the user again.
`forget_in_prepared` removes a user from a prepared dataset already saved.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from shopformer.data.prepare import LabelEncoder
from shopformer.data.prepared import PreparedDataset
from shopformer.data.schema import Dataset
from shopformer.data.sequences import Sequences

__all__ = ["FORGOTTEN_PREFIX", "Tombstones", "forget_in_prepared", "forgotten_placeholder", "user_hash", "without_user_id"]


def user_hash(user_id: str) -> str:
    """The id under which a forgotten user is remembered (not reversible to the user id)."""
    return hashlib.blake2b(str(user_id).encode("utf-8"), digest_size=16, person=b"sf-forget").hexdigest()


#: Start of the placeholder that keeps a forgotten user's position in an encoder.
FORGOTTEN_PREFIX = "forgotten-"


def forgotten_placeholder(user_id: str) -> str:
    """What replaces a forgotten user's id where a position must be kept (an encoder's code order)."""
    return f"{FORGOTTEN_PREFIX}{user_hash(user_id)}"


class Tombstones:
    """The hashes of forgotten users, kept in a text file (one hash per line, appended to)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        lines = self.path.read_text(encoding="utf-8").split() if self.path.is_file() else []
        self.hashes = set(lines)

    def add(self, user_id: str) -> None:
        digest = user_hash(user_id)
        if digest not in self.hashes:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(digest + "\n")
            self.hashes.add(digest)

    def __contains__(self, user_id: str) -> bool:
        return user_hash(user_id) in self.hashes

    def drop_from(self, dataset: Dataset, identity=str) -> tuple[Dataset, int]:
        """The dataset without the events and features of tombstoned users, and how many events went.

        `identity(user_id)` is the id the tombstones were written under (with pseudonymisation: the
        first-key pseudonym of the raw id, `Pseudonymiser.stable`, which survives key rotations).
        """
        frame = dataset.events.frame
        users = frame["user_id"].drop_nulls().unique()
        gone = [u for u in users.to_list() if identity(u) in self]
        if not gone:
            return dataset, 0
        kept = frame.filter(~pl.col("user_id").is_in(gone))
        features = None if dataset.users is None else dataset.users.filter(~pl.col("user_id").is_in(gone))
        return replace(dataset, events=dataset.events.with_frame(kept), users=features), frame.height - kept.height


def without_user_id(encoder: LabelEncoder, user_id: str) -> tuple[LabelEncoder, int | None]:
    """The encoder with `user_id` replaced by its placeholder (every code unchanged), and the user's
    code; the encoder as it is and None when it does not know the user."""
    classes = encoder.classes.to_list()
    if user_id not in classes:
        return encoder, None
    code = int(encoder.transform([user_id])[0])
    classes[classes.index(user_id)] = forgotten_placeholder(user_id)
    return LabelEncoder.from_classes(classes), code


def forget_in_prepared(directory: str | Path, user_id: str) -> int:
    """Removes a user from a saved prepared dataset: events, features and sequence; returns the events
    removed. The user's encoder entry becomes a placeholder, so every other user keeps their code."""
    prepared = PreparedDataset.load(directory)
    frame = prepared.events.frame
    removed = int((frame["user_id"] == user_id).sum())
    prepared.events = prepared.events.with_frame(frame.filter(pl.col("user_id") != user_id))
    if prepared.users is not None:
        prepared.users = prepared.users.filter(pl.col("user_id") != user_id)
    encoder, code = without_user_id(prepared.user_encoder, user_id)
    if code is not None:
        prepared.user_encoder, prepared.sequences = encoder, _without_user(prepared.sequences, code)
    prepared.save(directory)
    return removed


def _without_user(sequences: Sequences, code: int) -> Sequences:
    return sequences.select(np.flatnonzero(sequences.users != code))
