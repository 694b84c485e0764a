"""The store interface: what the receiver, the writer and the reports need from a database.

Both stores keep the same columns (the fields of `Row`, in order) and hand out the same dicts,
so everything above this package works with either.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sitebeacon.collect.types import Row

COLUMNS = Row._fields
"""Column order of every insert and every read: the fields of `Row`, so a row binds as it is."""

# A repeated id adds no row; a higher seq replaces the figures (protocol.md, "Repeats").
UPSERT_TAIL = (
    " ON CONFLICT (id) DO UPDATE SET data = excluded.data, ts = excluded.ts,"
    " transport = excluded.transport, seq = excluded.seq WHERE excluded.seq > records.seq"
)


NEW_COLUMNS = ("visitor", "browser", "os", "device")
"""Columns added after the first schema: a database that lacks them gets them on open."""

# Each column's type in each store, in COLUMNS order: the one place a column is declared.
_COLUMN_TYPES: dict[str, tuple[str, str]] = {
    "id": ("TEXT NOT NULL UNIQUE", "TEXT NOT NULL UNIQUE"),
    "received_at": ("TEXT NOT NULL", "TIMESTAMPTZ NOT NULL"),
    "type": ("TEXT NOT NULL", "TEXT NOT NULL"),
    "seq": ("INTEGER NOT NULL DEFAULT 0", "BIGINT NOT NULL DEFAULT 0"),
    "ts": ("INTEGER", "BIGINT"),
    "url": ("TEXT NOT NULL", "TEXT NOT NULL"),
    "bot": ("INTEGER NOT NULL DEFAULT 0", "BOOLEAN NOT NULL DEFAULT FALSE"),
}


def records_schema(dialect: str) -> str:
    """`CREATE TABLE records` for `sqlite` or `postgresql`: an `n` key that orders rows as they
    came, then COLUMNS (text unless `_COLUMN_TYPES` says otherwise)."""
    index = 0 if dialect == "sqlite" else 1
    key = "n INTEGER PRIMARY KEY" if dialect == "sqlite" else "n BIGSERIAL PRIMARY KEY"
    columns = [f"{name} {_COLUMN_TYPES.get(name, ('TEXT', 'TEXT'))[index]}" for name in COLUMNS]
    return "CREATE TABLE IF NOT EXISTS records (\n    " + ",\n    ".join([key, *columns]) + "\n)"


SALT_SCHEMA = "CREATE TABLE IF NOT EXISTS salts (day TEXT PRIMARY KEY, salt TEXT NOT NULL)"
ROLLUP_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS report_days"
    " (day TEXT NOT NULL, version INTEGER NOT NULL, summary {blob} NOT NULL,"
    " PRIMARY KEY (day, version))"
)
"""The report's exact daily summaries of finished days (report/rollup.py); a trigger deletes a
day's summary when one of its rows changes (a leave re-sent with a higher seq, days later)."""


def previous_day(day: str) -> str:
    """`2024-05-01` -> `2024-04-30`."""
    from datetime import date, timedelta

    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


class StoreError(Exception):
    """The store failed for a reason of its own (disk, server): the receiver answers 503."""


def iso_utc(moment: datetime) -> str:
    """Both stores hand out received_at in this one form: `2024-05-01T12:00:00.123Z`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def row_dict(values: Sequence[Any]) -> dict[str, Any]:
    """A stored row (in COLUMNS order) as the dict other modules read."""
    record = dict(zip(COLUMNS, values, strict=True))
    if isinstance(record["received_at"], datetime):
        record["received_at"] = iso_utc(record["received_at"])
    record["data"] = json.loads(record["data"]) if record["data"] is not None else None
    record["bot"] = bool(record["bot"])
    return record


class Store(ABC):
    """What the receiver and the reports need from a database."""

    url: str
    dialect = "sqlite"
    """Which SQL the reports speak to it: `sqlite` or `postgres`."""
    slow_writes = True
    """Whether `add` may wait (on a network, a lock): then it never runs on the event loop."""

    @abstractmethod
    def add(self, rows: Sequence[Row]) -> None:
        """Upsert `rows` and commit them in one transaction; raise StoreError on failure."""

    def try_add(self, rows: Sequence[Row]) -> bool:
        """`add` if it needs no waiting, else False with nothing written (see the SQLite store).
        Only called on the event loop, for stores with `slow_writes = False`."""
        self.add(rows)
        return True

    @abstractmethod
    def iter_records(self) -> Iterator[dict[str, Any]]:
        """Every committed record, oldest first, streamed (export of a large database)."""

    @abstractmethod
    def count(self) -> int:
        """How many rows are stored."""

    def add_bulk(self, rows: Sequence[Row]) -> None:
        """`add` for many rows at once (import); a store may have a faster way."""
        self.add(rows)

    @abstractmethod
    def daily_salt(self, day: str) -> bytes:
        """The visitor salt of UTC `day` (YYYY-MM-DD): made once, shared by every receiver of
        the store; salts of days before the previous one are deleted here (visitors.py)."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read-only query (the reports) on a connection of its own; `?` placeholders."""

    @abstractmethod
    def put_summaries(self, version: int, summaries: Sequence[tuple[str, bytes]]) -> None:
        """Store (day, summary) pairs (replacing any of the same day and version)."""

    @abstractmethod
    def drop_summaries(self, days: Sequence[str]) -> None:
        """Forget the summaries of `days` (import does, for the days it wrote into)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""

    def records(self) -> list[dict[str, Any]]:
        """Every committed record as a dict (keys: COLUMNS, data decoded, bot a bool)."""
        return list(self.iter_records())

    def flush(self) -> None:  # noqa: B027 - a no-op by design, not an abstract method
        """`add` commits before it returns, so there is never anything left to flush here."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
