"""The PostgreSQL store: several receivers (processes or machines) can share one database.

Same columns and the same upsert as the SQLite store; ids dedupe across receivers because the
unique index is in the database, not in any one process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sitebeacon.collect.stores.base import COLUMNS, UPSERT_TAIL, Store, StoreError, row_dict
from sitebeacon.collect.types import Row
from sitebeacon.errors import SitebeaconError

try:
    import psycopg
except ImportError:  # pragma: no cover - depends on the installed extras
    psycopg = None  # type: ignore[assignment]

PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    n BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    received_at TIMESTAMPTZ NOT NULL,
    type TEXT NOT NULL,
    url TEXT NOT NULL,
    referrer TEXT,
    target TEXT,
    transport TEXT,
    content_type TEXT,
    fetch_mode TEXT,
    seq BIGINT NOT NULL DEFAULT 0,
    ts BIGINT,
    data TEXT,
    bot BOOLEAN NOT NULL DEFAULT FALSE
)
"""

# Several receivers may start at once: CREATE TABLE IF NOT EXISTS alone can race.
_SCHEMA_LOCK = 0x5B_EAC0

STATEMENT_TIMEOUT = "10s"
"""A statement the server has not finished by then is cancelled: the writer answers 503."""
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
"""A peer that vanished (host down, network cut) is noticed in about 30 s, not hours."""
RECONNECT_PAUSE = 1.0
"""Seconds between attempts to reconnect: while the server is away, writes fail at once."""
CLOSE_LOCK_WAIT = 5.0
"""Seconds `close` waits for a write in progress before closing the connection anyway."""


class PostgresStore(Store):
    """One connection for writes (used by the writer thread), reconnected after a failure,
    with a statement timeout and TCP keepalives so that no write waits forever."""

    def __init__(self, url: str) -> None:
        if psycopg is None:
            raise SitebeaconError("PostgreSQL needs psycopg: pip install 'sitebeacon[postgres]'")
        self.url = url
        self._lock = threading.Lock()
        placeholders = ", ".join(
            "%s::timestamptz" if name == "received_at" else "%s" for name in COLUMNS
        )
        self._upsert = f"INSERT INTO records ({', '.join(COLUMNS)}) VALUES ({placeholders})"
        self._upsert += UPSERT_TAIL
        self._retry_at = 0.0
        self._db = self._connect()
        try:
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                self._db.execute(PG_SCHEMA)
        except psycopg.Error as error:
            self._db.close()
            raise SitebeaconError(f"cannot create the records table: {error}") from None

    def _connect(self) -> Any:
        assert psycopg is not None
        try:
            db = psycopg.connect(self.url, autocommit=True, connect_timeout=10, **KEEPALIVES)
            db.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
            return db
        except psycopg.Error as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "unknown"
            raise SitebeaconError(f"cannot connect to PostgreSQL: {reason}") from None

    def add(self, rows: Sequence[Row]) -> None:
        assert psycopg is not None
        with self._lock:
            try:
                if self._db.closed or self._db.broken:
                    if time.monotonic() < self._retry_at:
                        raise StoreError("PostgreSQL is unreachable, retrying shortly")
                    self._retry_at = time.monotonic() + RECONNECT_PAUSE
                    self._db = self._connect()
                with self._db.transaction(), self._db.cursor() as cursor:
                    cursor.executemany(self._upsert, rows)
            except (psycopg.Error, SitebeaconError) as error:
                raise StoreError(f"PostgreSQL write failed: {error}") from error

    def iter_records(self) -> Iterator[dict[str, Any]]:
        assert psycopg is not None
        with psycopg.connect(self.url) as reader, reader.cursor(name="sitebeacon_read") as cursor:
            cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM records ORDER BY n")
            for values in cursor:
                yield row_dict(values)

    def count(self) -> int:
        with self._lock:
            (total,) = self._db.execute("SELECT count(*) FROM records").fetchone()
        return int(total)

    def close(self) -> None:
        """Close the connection; a write stuck on a dead server is not waited for long."""
        held = self._lock.acquire(timeout=CLOSE_LOCK_WAIT)
        try:
            if held:
                self._db.close()
        finally:
            if held:
                self._lock.release()
