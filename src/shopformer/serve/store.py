"""The service's durable event store: SQLite (default) or PostgreSQL.

Every accepted event is committed here before the service acknowledges it. SQLite runs in WAL mode
with `synchronous=FULL`: a commit returns only after the write-ahead log is on disk, so an
acknowledged event survives a `kill -9` of the server (and a power cut). Events are idempotent on
`event_id`: a resent event is recognised and stored once.

Forgotten users are remembered only as a keyed hash of their id, so the bundle's stored history of
that user stays suppressed after a restart without keeping the id itself.

All methods are blocking; the service calls them from one dedicated thread.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from shopformer.data.erasure import user_hash
from shopformer.errors import ConfigError, ShopformerError
from shopformer.serve.ingest import OPTIONAL_EVENT_FIELDS

__all__ = ["EVENT_FIELDS", "EventStore", "is_postgres_url", "open_store", "user_hash"]

#: Columns of a stored event, in table order (`extra` holds the optional fields as JSON).
EVENT_FIELDS = ("event_id", "user_id", "item_id", "event_type", "timestamp")
_FRAME_SCHEMA = {"event_id": pl.String, "user_id": pl.String, "item_id": pl.String, "event_type": pl.String,
                 "timestamp": pl.Int64, "seq": pl.Int64}
_FRAME_COLUMNS = ", ".join(_FRAME_SCHEMA)
_PG_HINT = "a postgresql:// store needs psycopg: pip install 'shopformer[postgres]'"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        seq {serial}, event_id TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL, item_id TEXT,
        event_type TEXT NOT NULL, timestamp BIGINT NOT NULL, extra TEXT, received_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, timestamp)",
    "CREATE TABLE IF NOT EXISTS forgotten (user_hash TEXT PRIMARY KEY, forgotten_at DOUBLE PRECISION NOT NULL)",
)


@dataclass(frozen=True)
class _Dialect:
    placeholder: str
    serial: str
    insert_ignore: str


_SQLITE = _Dialect("?", "INTEGER PRIMARY KEY AUTOINCREMENT", "INSERT OR IGNORE INTO")
_POSTGRES = _Dialect("%s", "BIGSERIAL PRIMARY KEY", "INSERT INTO")


class EventStore:
    """Events by user, idempotent on `event_id`, and the set of forgotten users."""

    def __init__(self, connection: Any, dialect: _Dialect, location: str) -> None:
        self._db, self._dialect, self.location = connection, dialect, location
        with self._transaction() as cursor:
            for statement in _SCHEMA:
                cursor.execute(statement.format(serial=dialect.serial))

    def _sql(self, statement: str) -> str:
        return statement.replace("?", self._dialect.placeholder)

    def _transaction(self):
        # sqlite3 and psycopg connections are both context managers that commit or roll back.
        return _Transaction(self._db)

    def add(self, events: pl.DataFrame) -> list[str]:
        """Stores validated events (canonical columns); returns the event ids that were new.

        Ids already in the store are left as they are: sending an event twice stores it once.
        """
        if events.is_empty():
            return []
        ids = events["event_id"].to_list()
        optional = [name for name in OPTIONAL_EVENT_FIELDS if name in events.columns]
        extras = [_extra_json(row) for row in events.select(optional).iter_rows(named=True)] if optional else [None] * len(ids)
        now = time.time()
        rows = [(*values, extra, now) for values, extra in zip(events.select(EVENT_FIELDS).iter_rows(), extras)]
        conflict = " ON CONFLICT (event_id) DO NOTHING" if self._dialect is _POSTGRES else ""
        with self._transaction() as cursor:
            existing = self._existing(cursor, ids)
            cursor.executemany(self._sql(
                f"{self._dialect.insert_ignore} events (event_id, user_id, item_id, event_type, timestamp, extra, received_at) "
                f"VALUES (?, ?, ?, ?, ?, ?, ?){conflict}"), [row for row in rows if row[0] not in existing])
        return [event_id for event_id in dict.fromkeys(ids) if event_id not in existing]

    def _existing(self, cursor: Any, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 500):  # SQLite limits the number of bound parameters
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            cursor.execute(self._sql(f"SELECT event_id FROM events WHERE event_id IN ({marks})"), chunk)
            found.update(row[0] for row in cursor.fetchall())
        return found

    def user_events(self, user_id: str) -> list[dict[str, Any]]:
        """The user's stored events in time order (optional fields included where present)."""
        with self._transaction() as cursor:
            cursor.execute(self._sql(
                "SELECT event_id, user_id, item_id, event_type, timestamp, extra FROM events "
                "WHERE user_id = ? ORDER BY timestamp, seq"), (user_id,))
            rows = cursor.fetchall()
        return [{**dict(zip(EVENT_FIELDS, row[:5])), **json.loads(row[5] or "{}")} for row in rows]

    def frame(self, user_id: str) -> pl.DataFrame:
        """One user's stored events as a frame: event_id, user_id, item_id, event_type, timestamp, seq."""
        return self._query(f"SELECT {_FRAME_COLUMNS} FROM events WHERE user_id = ? ORDER BY seq", (user_id,))

    def recent(self, per_user: int) -> pl.DataFrame:
        """Every user's newest `per_user` events (by time, then arrival), as `frame` lays them out.

        Only what the users' states keep is read, so a start-up over a long log stays small in memory.
        """
        ranked = (f"SELECT {_FRAME_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY timestamp DESC, seq DESC) "
                  "AS newest FROM events")
        return self._query(f"SELECT {_FRAME_COLUMNS} FROM ({ranked}) AS ranked WHERE newest <= ? ORDER BY seq", (per_user,))

    def _query(self, statement: str, params: tuple) -> pl.DataFrame:
        with self._transaction() as cursor:
            cursor.execute(self._sql(statement), params)
            rows = cursor.fetchall()
        return pl.DataFrame(rows, schema=_FRAME_SCHEMA, orient="row")

    def forget(self, user_id: str) -> int:
        """Deletes the user's events and remembers (as a hash) that the user is forgotten."""
        conflict = "ON CONFLICT (user_hash) DO UPDATE SET forgotten_at = excluded.forgotten_at"
        with self._transaction() as cursor:
            cursor.execute(self._sql("DELETE FROM events WHERE user_id = ?"), (user_id,))
            deleted = cursor.rowcount
            cursor.execute(self._sql(f"INSERT INTO forgotten (user_hash, forgotten_at) VALUES (?, ?) {conflict}"),
                           (user_hash(user_id), time.time()))
        return int(deleted)

    def purge_before(self, timestamp: int) -> int:
        """Deletes every event older than `timestamp` (the retention window); returns how many."""
        with self._transaction() as cursor:
            cursor.execute(self._sql("DELETE FROM events WHERE timestamp < ?"), (int(timestamp),))
            return int(cursor.rowcount)

    def rekey(self, rekey: Callable[[str], str], known: Iterable[str] = ()) -> int:
        """Maps every stored user id through `rekey`, and the forgotten list with it: a forgotten user
        among the stored ids or `known` (the bundle's users) stays forgotten under the new id."""
        with self._transaction() as cursor:
            cursor.execute("SELECT DISTINCT user_id FROM events")
            stored = [row[0] for row in cursor.fetchall()]
            for user in stored:
                cursor.execute(self._sql("UPDATE events SET user_id = ? WHERE user_id = ?"), (rekey(user), user))
            cursor.execute("SELECT user_hash, forgotten_at FROM forgotten")
            forgotten = dict(cursor.fetchall())
            conflict = "ON CONFLICT (user_hash) DO NOTHING"
            for user in {*stored, *known}:
                if user_hash(user) in forgotten:
                    cursor.execute(self._sql(f"INSERT INTO forgotten (user_hash, forgotten_at) VALUES (?, ?) {conflict}"),
                                   (user_hash(rekey(user)), forgotten[user_hash(user)]))
        return len(stored)

    def forgotten(self) -> set[str]:
        """Hashes (`user_hash`) of every forgotten user."""
        with self._transaction() as cursor:
            cursor.execute("SELECT user_hash FROM forgotten")
            return {row[0] for row in cursor.fetchall()}

    def close(self) -> None:
        self._db.close()


class _Transaction:
    """A cursor whose block commits on success and rolls back on error."""

    def __init__(self, connection: Any) -> None:
        self._db = connection

    def __enter__(self) -> Any:
        self._cursor = self._db.cursor()
        return self._cursor

    def __exit__(self, kind, error, trace) -> None:
        self._cursor.close()
        if kind is None:
            self._db.commit()
        else:
            self._db.rollback()


def _extra_json(row: dict[str, Any]) -> str | None:
    present = {name: value for name, value in row.items() if value is not None}
    return json.dumps(present) if present else None


def is_postgres_url(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def open_store(location: str | Path) -> EventStore:
    """An SQLite file path, or a `postgresql://` URL (needs the `postgres` extra)."""
    text = str(location)
    if is_postgres_url(text):
        return _open_postgres(text)
    path = Path(text)
    if path.is_dir():
        raise ConfigError(f"--store {path} is a folder; give a file path such as {path / 'events.sqlite'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
        connection.execute("PRAGMA journal_mode=WAL")
        # FULL: the WAL is fsynced at every commit, so an acknowledged event is on disk.
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA busy_timeout=5000")
    except sqlite3.DatabaseError as exc:
        raise ShopformerError(f"{path}: cannot be opened as an SQLite event store ({exc})") from None
    return EventStore(connection, _SQLITE, str(path))


def _open_postgres(url: str) -> EventStore:
    try:
        import psycopg
    except ImportError:
        raise ShopformerError(_PG_HINT) from None
    try:
        connection = psycopg.connect(url)
    except psycopg.Error as exc:
        raise ShopformerError(f"cannot connect to the PostgreSQL event store: {str(exc).strip()}") from None
    return EventStore(connection, _POSTGRES, url.split("@")[-1])
