"""The PostgreSQL store: several receivers (processes or machines) can share one database.

Same columns and the same upsert as the SQLite store; ids dedupe across receivers because the
unique index is in the database, not in any one process.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sitebeacon.collect.stores.base import (
    COLUMNS,
    NEW_COLUMNS,
    ROLLUP_SCHEMA,
    SALT_SCHEMA,
    UPSERT_TAIL,
    Store,
    StoreError,
    previous_day,
    records_schema,
    row_dict,
)
from sitebeacon.collect.types import Row
from sitebeacon.errors import SitebeaconError

try:
    import psycopg
except ImportError:  # pragma: no cover - depends on the installed extras
    psycopg = None  # type: ignore[assignment]

PG_SCHEMA = (
    records_schema("postgresql")
    + ";\n"
    + "".join(
        f"ALTER TABLE records ADD COLUMN IF NOT EXISTS {name} TEXT;\n" for name in NEW_COLUMNS
    )
    + "CREATE INDEX IF NOT EXISTS records_received ON records (received_at);\n"
)

PG_ROLLUP_TRIGGER = """
CREATE OR REPLACE FUNCTION sitebeacon_summary_stale() RETURNS trigger AS $$
BEGIN
    DELETE FROM report_days
    WHERE day = to_char(NEW.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD');
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER records_summary_stale AFTER UPDATE ON records
    FOR EACH ROW EXECUTE FUNCTION sitebeacon_summary_stale();
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

    dialect = "postgres"

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
                self._db.execute(SALT_SCHEMA)
                self._db.execute(ROLLUP_SCHEMA.format(blob="BYTEA"))
                self._db.execute(PG_ROLLUP_TRIGGER)
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
        with self._transaction(pause=True) as db, db.cursor() as cursor:
            cursor.executemany(self._upsert, rows)

    @contextlib.contextmanager
    def _transaction(self, *, pause: bool = False) -> Iterator[Any]:
        """A transaction on the store's connection, under the store lock, reconnecting first
        if the connection broke; any failure is a StoreError. With `pause` (the receiver's
        writes), a reconnection is tried at most every RECONNECT_PAUSE seconds meanwhile."""
        assert psycopg is not None
        with self._lock:
            try:
                if self._db.closed or self._db.broken:
                    if pause:
                        if time.monotonic() < self._retry_at:
                            raise StoreError("PostgreSQL is unreachable, retrying shortly")
                        self._retry_at = time.monotonic() + RECONNECT_PAUSE
                    self._db = self._connect()
                with self._db.transaction():
                    yield self._db
            except (psycopg.Error, SitebeaconError) as error:
                raise StoreError(f"PostgreSQL write failed: {error}") from error

    def iter_records(self) -> Iterator[dict[str, Any]]:
        assert psycopg is not None
        with psycopg.connect(self.url) as reader, reader.cursor(name="sitebeacon_read") as cursor:
            cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM records ORDER BY n")
            for values in cursor:
                yield row_dict(values)

    def add_bulk(self, rows: Sequence[Row]) -> None:
        """COPY into a temporary table, then one upserting INSERT: faster than
        `executemany` for an import. A repeated id within `rows` keeps its highest seq (one
        INSERT may not touch a row twice)."""
        assert psycopg is not None
        kept: dict[str, tuple[int, Row]] = {}
        for order, row in enumerate(rows):
            held = kept.get(row.id)
            if held is None or row.seq > held[1].seq:
                kept[row.id] = (held[0] if held else order, row)
        columns = ", ".join(COLUMNS)
        with self._transaction() as db, db.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS import_rows ON COMMIT DELETE ROWS AS"
                f" SELECT 0::bigint AS k, {columns} FROM records WITH NO DATA"
            )
            with cursor.copy(f"COPY import_rows (k, {columns}) FROM STDIN") as copy:
                for order, row in sorted(kept.values()):
                    copy.write_row((order, *row))
            cursor.execute(
                f"INSERT INTO records ({columns}) SELECT {columns} FROM import_rows"
                f" ORDER BY k{UPSERT_TAIL}"
            )

    def daily_salt(self, day: str) -> bytes:
        with self._transaction() as db:
            # Every receiver inserts its own candidate; the first one wins for all.
            db.execute(
                "INSERT INTO salts (day, salt) VALUES (%s, %s) ON CONFLICT (day) DO NOTHING",
                (day, secrets.token_hex(32)),
            )
            db.execute("DELETE FROM salts WHERE day < %s", (previous_day(day),))
            (salt,) = db.execute("SELECT salt FROM salts WHERE day = %s", (day,)).fetchone()
        return bytes.fromhex(salt)

    def put_summaries(self, version: int, summaries: Sequence[tuple[str, bytes]]) -> None:
        self._write(
            "INSERT INTO report_days (day, version, summary) VALUES (%s, %s, %s)"
            " ON CONFLICT (day, version) DO UPDATE SET summary = excluded.summary",
            [(day, version, summary) for day, summary in summaries],
        )

    def drop_summaries(self, days: Sequence[str]) -> None:
        self._write("DELETE FROM report_days WHERE day = %s", [(day,) for day in days])

    def _write(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        with self._transaction() as db, db.cursor() as cursor:
            cursor.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        assert psycopg is not None
        try:
            with psycopg.connect(self.url, connect_timeout=10) as reader:
                rows: list[tuple[Any, ...]] = reader.execute(
                    sql.replace("?", "%s"), tuple(params)
                ).fetchall()
                return rows
        except psycopg.Error as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "unknown"
            raise SitebeaconError(f"report query failed: {reason}") from None

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
