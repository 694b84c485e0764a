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
