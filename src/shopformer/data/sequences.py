"""Per-user event sequences in compact columnar form (CSR layout: offsets + flat value arrays).

One Python list per user would cost ~100 bytes per event; here 10M events take ~130 MB: user `k`
owns positions `offsets[k]:offsets[k+1]` of the flat `items`, `event_types` and `timestamps` arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shopformer.artifacts import read_header, write_header
from shopformer.data.codes import FIRST_CODE, PADDING_CODE, UNKNOWN_CODE
from shopformer.data.prepare import LabelEncoder
from shopformer.data.schema import EventLog
from shopformer.errors import DataError

__all__ = ["SequenceArrays", "Sequences", "UserSequence"]

_ARRAYS = {"users": np.int32, "offsets": np.int64, "items": np.int32, "event_types": np.int8, "timestamps": np.int64}
_PADDABLE_FIELDS = ("items", "event_types", "timestamps")


@dataclass(frozen=True)
class SequenceArrays:
    """Per-user event sequences in CSR layout (optional arrays aligned with `items`).

    Pass `timestamps` only when they are real seconds: positions carry no gap information.
    """

    offsets: np.ndarray
    items: np.ndarray
    event_types: np.ndarray | None = None
    timestamps: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.items)
        if self.offsets[0] != 0 or self.offsets[-1] != n or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must start at 0, end at len(items) and never decrease")
        for name in ("event_types", "timestamps"):
            array = getattr(self, name)
            if array is not None and len(array) != n:
                raise ValueError(f"{name} has {len(array)} entries, items has {n}")

    @classmethod
    def from_lists(cls, sequences: list[list[int]]) -> SequenceArrays:
        """Item-code lists (one per user) as CSR arrays, without event types or times."""
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        items = np.fromiter((i for s in sequences for i in s), dtype=np.int32, count=int(lengths.sum()))
        return cls(offsets, items)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def windows(self, starts: np.ndarray, lengths: np.ndarray) -> SequenceArrays:
        """New sequences whose row r is events `starts[r] : starts[r] + lengths[r]` of the flat arrays."""
        starts, lengths = np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        # Flat position of every kept event, computed without a loop over rows.
        positions = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])

        def take(array: np.ndarray | None) -> np.ndarray | None:
            return None if array is None else array[positions]

        return SequenceArrays(offsets, self.items[positions], take(self.event_types), take(self.timestamps))

    def rows(self, rows: np.ndarray) -> SequenceArrays:
        """The sequences of `rows`, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return self.windows(self.offsets[rows], self.lengths[rows])

    def drop_last(self, n: int = 1) -> SequenceArrays:
        """The same users with their last `n` events cut off (users with fewer keep none)."""
        return self.windows(self.offsets[:-1], np.maximum(self.lengths - n, 0))

    def keep_last(self, n: int) -> SequenceArrays:
        """The same users with only their last `n` events."""
        kept = np.minimum(self.lengths, n)
        return self.windows(self.offsets[1:] - kept, kept)

    def last_item_cases(self) -> tuple[SequenceArrays, np.ndarray]:
        """Users with two or more events: (their events but the last, their last item codes)."""
        rows = np.flatnonzero(self.lengths >= 2)
        return self.rows(rows).drop_last(1), self.items[self.offsets[1:][rows] - 1].astype(np.int64)

    def item_counts(self, n_items: int) -> np.ndarray:
        """Occurrences of every item code (n_items,)."""
        return np.bincount(self.items, minlength=n_items)[:n_items]


@dataclass(frozen=True)
class UserSequence:
    """One user's events: views into the flat arrays of a `Sequences`, not copies."""

    user: int
    items: np.ndarray
    event_types: np.ndarray
    timestamps: np.ndarray

    def __len__(self) -> int:
        return len(self.items)


def _sorted_by_user_time(users: np.ndarray, timestamps: np.ndarray) -> bool:
    user_step = np.diff(users)
    return bool(np.all((user_step > 0) | ((user_step == 0) & (np.diff(timestamps) >= 0))))


@dataclass(frozen=True, init=False, eq=False)
class Sequences(SequenceArrays):
    """Users' event sequences in time order, encoded with the prepared dataset's encoders: the CSR
    `SequenceArrays` with compact dtypes, plus each row's user code and the event vocabulary.

    Arrays: `users` (int32 user codes, ascending), `offsets` (int64, `len(users) + 1`),
    `items` (int32 item codes), `event_types` (int8 codes: `event_vocabulary[k]` has code `k + 2`,
    0 pads, 1 is unknown) and `timestamps` (int64), the last three with one entry per event.
    """

    users: np.ndarray
    event_vocabulary: tuple[str, ...]

    def __init__(
        self,
        users: np.ndarray,
        offsets: np.ndarray,
        items: np.ndarray,
        event_types: np.ndarray,
        timestamps: np.ndarray,
        event_vocabulary: tuple[str, ...],
    ) -> None:
        fields = {"users": np.asarray(users, dtype=np.int32), "offsets": np.asarray(offsets, dtype=np.int64),
                  "items": np.asarray(items, dtype=np.int32), "event_types": np.asarray(event_types, dtype=np.int8),
                  "timestamps": np.asarray(timestamps, dtype=np.int64), "event_vocabulary": tuple(event_vocabulary)}
        for name, value in fields.items():
            object.__setattr__(self, name, value)  # frozen, like every SequenceArrays
        self._check_layout()

    def _check_layout(self) -> None:
        n_events = len(self.items)
        if len(self.offsets) != len(self.users) + 1 or self.offsets[0] != 0 or self.offsets[-1] != n_events:
            raise DataError("sequence offsets do not match the users and events", expected="CSR layout")
        if len(self.event_types) != n_events or len(self.timestamps) != n_events:
            raise DataError("sequence arrays have different lengths", expected=f"{n_events} events each")

    @classmethod
    def from_log(
        cls, log: EventLog, user_encoder: LabelEncoder, item_encoder: LabelEncoder, event_vocab: LabelEncoder
    ) -> Sequences:
        """Encodes a log and groups it by user in time order.

        A log already sorted by user and time (as the preparation steps leave it) is used as it is;
        otherwise it is sorted stably. Items or event types unknown to the encoders get code 1;
        a user unknown to `user_encoder` is an error, since sequences are looked up by user.
        """
        if event_vocab.n_codes > np.iinfo(np.int8).max:
            raise DataError("too many event types for int8 codes", expected="at most 125 event types")
        frame = log.frame
        users = user_encoder.transform(frame["user_id"])
        if np.any(users == UNKNOWN_CODE):
            raise DataError("the log has users the user encoder does not know", column="user_id")
        timestamps = frame["timestamp"].to_numpy().astype(np.int64, copy=False)
        items = item_encoder.transform(frame["item_id"])
        event_types = event_vocab.transform(frame["event_type"]).astype(np.int8)
        if not _sorted_by_user_time(users, timestamps):
            order = np.lexsort((timestamps, users))
            users, items, event_types, timestamps = users[order], items[order], event_types[order], timestamps[order]
        return cls.from_codes(users, items, event_types, timestamps, tuple(event_vocab.classes_.to_list()))

    @classmethod
    def from_codes(cls, users: np.ndarray, items: np.ndarray, event_types: np.ndarray, timestamps: np.ndarray,
                   event_vocabulary: tuple[str, ...]) -> Sequences:
        """Sequences from one code per event, already sorted by user code and then time."""
        starts = np.flatnonzero(np.diff(users, prepend=np.int32(-1)) != 0)
        offsets = np.append(starts, len(users)).astype(np.int64)
        return cls(users[starts], offsets, items, event_types, timestamps, event_vocabulary)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_events(self) -> int:
        return len(self.items)

    def select(self, rows: np.ndarray) -> Sequences:
        """The users of `rows` (ascending) with their sequences, codes and vocabulary unchanged."""
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        kept = self.rows(rows)
        return Sequences(self.users[rows], kept.offsets, kept.items, kept.event_types, kept.timestamps, self.event_vocabulary)

    def arrays(self, with_times: bool = True) -> SequenceArrays:
        """The sequences as CSR arrays for models: int64 item and event-type codes, and the
        timestamps when `with_times` (real times only: positions of an order-only log carry no gaps)."""
        return SequenceArrays(self.offsets, self.items.astype(np.int64), self.event_types.astype(np.int64),
                              self.timestamps if with_times else None)

    def positions(self, user_codes: np.ndarray) -> np.ndarray:
        """Row of each user code in this object (for `sequence`), or -1 for users without a sequence."""
        user_codes = np.asarray(user_codes, dtype=np.int32)
        rows = np.searchsorted(self.users, user_codes)
        found = rows < len(self.users)
        found[found] = self.users[rows[found]] == user_codes[found]
        return np.where(found, rows, -1)

    def sequence(self, i: int) -> UserSequence:
        """The i-th user's events (views, no copies)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"sequence {i} out of range for {len(self)} users")
        i %= len(self)
        window = slice(self.offsets[i], self.offsets[i + 1])
        return UserSequence(
            int(self.users[i]), self.items[window], self.event_types[window], self.timestamps[window]
        )

    def last(self, n: int, field: str = "items") -> np.ndarray:
        """The last `n` values of `field` per user, shape (n_users, n), left-padded with 0.

        The most recent event sits in the last column, which is where a causal Transformer reads
        its prediction; code 0 (`PADDING_CODE`) marks the empty positions of short sequences.
        """
        if field not in _PADDABLE_FIELDS:
            raise ValueError(f"field must be one of {_PADDABLE_FIELDS}, not {field!r}")
        if n < 1:
            raise ValueError("n must be at least 1")
        values = getattr(self, field)
        starts, ends = self.offsets[:-1, None], self.offsets[1:, None]
        # Position of column j for each user: the (n - j)-th event from the end; before `start` = pad.
        index = ends - n + np.arange(n, dtype=np.int64)
        present = index >= starts
        padded = np.full((len(self), n), PADDING_CODE, dtype=values.dtype)
        padded[present] = values[index[present]]
        return padded

    def save(self, path: str | Path) -> None:
        """Writes the arrays to `path` (.npz, uncompressed for speed) and a JSON description beside it."""
        path = Path(path).with_suffix(".npz")
        np.savez(path, **{name: getattr(self, name) for name in _ARRAYS})
        write_header(path.with_suffix(".json"), "sequences", indent=2, n_users=len(self), n_events=self.n_events,
                     first_code=FIRST_CODE, event_vocabulary=list(self.event_vocabulary))

    @classmethod
    def load(cls, path: str | Path) -> Sequences:
        """Reads sequences written by `save` (no pickle is ever loaded)."""
        path = Path(path).with_suffix(".npz")
        description = read_header(path.with_suffix(".json"), "sequences", what="saved sequences")
        with np.load(path, allow_pickle=False) as arrays:
            loaded = {name: arrays[name] for name in _ARRAYS}
        return cls(**loaded, event_vocabulary=tuple(description["event_vocabulary"]))

    def equals(self, other: Sequences) -> bool:
        """Whether both hold the same users, events and vocabulary."""
        return self.event_vocabulary == other.event_vocabulary and all(
            np.array_equal(getattr(self, name), getattr(other, name)) for name in _ARRAYS
        )

    def __repr__(self) -> str:
        return f"Sequences({len(self)} users, {self.n_events} events)"
