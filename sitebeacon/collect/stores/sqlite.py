"""The SQLite store: one file in WAL mode, the default for one machine."""

from __future__ import annotations

import contextlib
import logging
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path
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

log = logging.getLogger("sitebeacon.store")

SQLITE_SCHEMA = records_schema("sqlite")
# The reports read a period by received_at (ISO text sorts as time).
SQLITE_INDEXES = ("CREATE INDEX IF NOT EXISTS records_received ON records (received_at)",)

BUSY_TIMEOUT_MS = 10_000
"""How long a write waits for a lock held by another process (in the writer thread only)."""

SQLITE_ROLLUP_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS records_summary_stale AFTER UPDATE ON records
BEGIN DELETE FROM report_days WHERE day = substr(NEW.received_at, 1, 10); END
"""

_CHUNK = 48
"""Rows per INSERT: 48 x 17 parameters stays under the 999 of SQLite builds before 3.32."""


# After a checkpoint restarts the log, SQLite truncates the -wal file down to this size.
WAL_SIZE_LIMIT = 64 * 1024 * 1024


class SQLiteStore(Store):
    """One file in WAL mode: readers never block the writer, and commits need no fsync.

    Checkpoints (copying the WAL into the database file, with fsync) run in a thread of their
    own every half second instead of inside whichever commit crosses the WAL size limit, so
    a commit never waits on the disk and can run on the event loop (`slow_writes = False`).
    On the event loop it never waits on a lock either (`try_add`): what would wait goes to
    the writer's thread, so a lock held by another process or by a checkpoint delays only
    the records that need it, not every request.
    """

    slow_writes = False
    checkpoint_every = 0.5
    wal_restart_frames = 4096  # 16 MiB of 4 KiB pages

    def __init__(self, path: Path, url: str) -> None:
        self.url = url
        self.path = path
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a commit survives a crash of the process, fsync is left to checkpoints.
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA wal_autocheckpoint = 0")
            self._db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            self._db.execute(SQLITE_SCHEMA)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(records)")}
            for name in NEW_COLUMNS:
                if name not in have:  # a database made before these columns existed
                    self._db.execute(f"ALTER TABLE records ADD COLUMN {name} TEXT")
            for statement in SQLITE_INDEXES:
                self._db.execute(statement)
            self._db.execute(SALT_SCHEMA)
            self._db.execute(ROLLUP_SCHEMA.format(blob="BLOB"))
            self._db.execute(SQLITE_ROLLUP_TRIGGER)
            self._db.execute("PRAGMA busy_timeout = 0")  # see try_add; add sets its own
        except sqlite3.Error as error:
            raise SitebeaconError(f"cannot open SQLite database {path}: {error}") from None
        self._columns = ", ".join(COLUMNS)
        self._statements: dict[int, str] = {}

    def _upsert(self, count: int) -> str:
        """One INSERT for `count` rows: a single step of SQLite, so the writer thread lets go
        of the GIL once per chunk instead of once per row, and the event loop runs meanwhile."""
        statement = self._statements.get(count)
        if statement is None:
            values = ", ".join(["(" + ", ".join("?" * len(COLUMNS)) + ")"] * count)
            statement = f"INSERT INTO records ({self._columns}) VALUES {values}{UPSERT_TAIL}"
            self._statements[count] = statement
        return statement

    def add(self, rows: Sequence[Row]) -> None:
        """Commit `rows`, waiting up to BUSY_TIMEOUT for a lock held elsewhere (never on the
        event loop: the writer sends here only what `try_add` could not write at once)."""
        self._start_checkpointer()
        with self._transaction(wait=True):
            self._insert(rows)

    def try_add(self, rows: Sequence[Row]) -> bool:
        """Commit `rows` only if that needs no waiting: False, with nothing written, when the
        checkpointer holds the store lock or another connection holds SQLite's write lock."""
        self._start_checkpointer()
        if not self._lock.acquire(blocking=False):
            return False
        try:
            try:
                self._db.execute("BEGIN IMMEDIATE")  # busy_timeout is 0: never a busy wait
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    return False
                raise StoreError(f"SQLite write failed: {error}") from error
            try:
                self._insert_and_commit(rows)
            except sqlite3.Error as error:
                raise StoreError(f"SQLite write failed: {error}") from error
            return True
        finally:
            self._lock.release()

    def _insert_and_commit(self, rows: Sequence[Row]) -> None:
        """Inside BEGIN IMMEDIATE: insert, commit; on any failure, COMMIT's included, roll
        back, so that the connection never stays inside a failed transaction."""
        try:
            self._insert(rows)
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # SQLite may have rolled back already (disk full)
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    def _insert(self, rows: Sequence[Row]) -> None:
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            self._db.execute(self._upsert(len(chunk)), list(chain.from_iterable(chunk)))

    def _start_checkpointer(self) -> None:
        if self._checkpointer is None:
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="sitebeacon-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def iter_records(self) -> Iterator[dict[str, Any]]:
        # A connection of its own: reading while the writer commits is what WAL is for.
        reader = sqlite3.connect(self.path, isolation_level=None)
        try:
            cursor = reader.execute(f"SELECT {', '.join(COLUMNS)} FROM records ORDER BY n")
            for values in cursor:
                yield row_dict(values)
        finally:
            reader.close()

    def daily_salt(self, day: str) -> bytes:
        # Asked on the event loop once a day: no busy wait (a busy store means no visitor ids
        # for a few seconds, see collect/visitors.py).
        with self._transaction(wait=False) as db:
            db.execute(
                "INSERT OR IGNORE INTO salts (day, salt) VALUES (?, ?)",
                (day, secrets.token_hex(32)),
            )
            db.execute("DELETE FROM salts WHERE day < ?", (previous_day(day),))
            (salt,) = db.execute("SELECT salt FROM salts WHERE day = ?", (day,)).fetchone()
        return bytes.fromhex(salt)

    def put_summaries(self, version: int, summaries: Sequence[tuple[str, bytes]]) -> None:
        self._write(
            "INSERT OR REPLACE INTO report_days (day, version, summary) VALUES (?, ?, ?)",
            [(day, version, summary) for day, summary in summaries],
        )

    def drop_summaries(self, days: Sequence[str]) -> None:
        self._write("DELETE FROM report_days WHERE day = ?", [(day,) for day in days])

    def _write(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Report summaries (from `report`, `import` or the receiver's keeper process, never
        the event loop): wait for a write lock the receiver holds, as `add` does."""
        with self._transaction(wait=True) as db:
            db.executemany(sql, rows)

    @contextlib.contextmanager
    def _transaction(self, *, wait: bool) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT under the store lock; on any failure, COMMIT's included,
        roll back, so the connection never stays inside a failed transaction. With `wait`, a
        write lock held by another process is waited for up to BUSY_TIMEOUT; without, it fails
        at once (busy_timeout stays 0)."""
        with self._lock:
            try:
                if wait:
                    self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    try:
                        yield self._db
                        self._db.execute("COMMIT")
                    except BaseException:
                        if self._db.in_transaction:  # SQLite may have rolled back (disk full)
                            with contextlib.suppress(sqlite3.Error):
                                self._db.execute("ROLLBACK")
                        raise
                finally:
                    if wait:
                        self._db.execute("PRAGMA busy_timeout = 0")
            except sqlite3.Error as error:
                raise StoreError(f"SQLite write failed: {error}") from error

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        reader = sqlite3.connect(self.path, isolation_level=None)
        try:
            reader.execute("PRAGMA busy_timeout = 10000")
            return reader.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as error:
            raise SitebeaconError(f"report query failed: {error}") from None
        finally:
            reader.close()

    def count(self) -> int:
        with self._lock:
            (total,) = self._db.execute("SELECT count(*) FROM records").fetchone()
        return int(total)

    def _checkpoint_loop(self) -> None:
        # No busy timeout: a RESTART that would wait for readers (a long export) gives up at
        # once and is tried again next time, rather than holding the store lock meanwhile.
        checkpoints = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=0
        )
        checkpoints.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        try:
            while not self._stop.wait(self.checkpoint_every):
                try:
                    # PASSIVE: copies what it can without blocking the writer or the readers.
                    _, frames, _ = checkpoints.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames > self.wal_restart_frames:
                        # Under sustained writes a passive checkpoint never catches up and the
                        # log only grows (about 1 GB a minute at full load); hold the writer for
                        # one RESTART so the log starts again from its beginning.
                        with self._lock:
                            checkpoints.execute("PRAGMA wal_checkpoint(RESTART)")
                except sqlite3.Error as error:  # the next one may well succeed
                    log.warning("SQLite checkpoint failed: %s", error)
        finally:
            checkpoints.close()

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()


def sqlite_path(url: str, *, create: bool) -> Path:
    raw = url[len("sqlite:///") :]
    if not raw or raw == ":memory:":
        raise SitebeaconError(
            f"{url!r}: give a file, as sqlite:///relative.db or sqlite:////abs.db"
        )
    path = Path(raw)
    if create:
        if not path.parent.is_dir():
            raise SitebeaconError(f"cannot create {path}: directory {path.parent} does not exist")
    elif not path.is_file():
        raise SitebeaconError(f"no database at {path} (wrong --db, or nothing received yet)")
    return path
