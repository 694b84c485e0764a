"""Both stores (SQLite, PostgreSQL) behave the same; the group-commit writer loses nothing."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from files import make_row as row

from sitebeacon.collect.stores import COLUMNS, StoreError, open_store
from sitebeacon.collect.stores.sqlite import SQLiteStore
from sitebeacon.collect.types import Row
from sitebeacon.collect.writer import GroupCommitWriter
from sitebeacon.errors import SitebeaconError


def test_round_trip_keeps_every_field(store_url: str) -> None:
    with open_store(store_url) as store:
        store.add(
            [
                row(
                    "a",
                    referrer="https://ref/",
                    ts=1_700_000_000_000,
                    data='{"visible_ms":5}',
                    bot=True,
                    type="leave",
                    url="https://a/ünï😀",
                    visitor="0123456789abcdef",
                    browser="Firefox 128",
                    os="Linux",
                    device="desktop",
                ),
                row("b", target="https://out/", transport=None, fetch_mode=None, content_type=None),
            ]
        )
        records = store.records()
    assert [set(record) for record in records] == [set(COLUMNS)] * 2
    first, second = records
    assert first == {
        "id": "a",
        "received_at": "2024-05-01T12:00:00.123Z",
        "type": "leave",
        "url": "https://a/ünï😀",
        "referrer": "https://ref/",
        "target": None,
        "transport": "beacon",
        "content_type": "text/plain;charset=UTF-8",
        "fetch_mode": "no-cors",
        "seq": 0,
        "ts": 1_700_000_000_000,
        "data": {"visible_ms": 5},
        "bot": True,
        "visitor": "0123456789abcdef",
        "browser": "Firefox 128",
        "os": "Linux",
        "device": "desktop",
    }
    assert (second["id"], second["target"], second["transport"], second["data"]) == (
        "b",
        "https://out/",
        None,
        None,
    )
    assert second["bot"] is False


def test_records_come_back_in_arrival_order(store_url: str) -> None:
    ids = [f"id{n:03d}" for n in range(50)][::-1]
    with open_store(store_url) as store:
        for chunk in range(0, 50, 7):
            store.add([row(record_id) for record_id in ids[chunk : chunk + 7]])
        assert [record["id"] for record in store.records()] == ids
        assert store.count() == 50


def test_repeated_id_adds_no_row(store_url: str) -> None:
    with open_store(store_url) as store:
        store.add([row("dup", data='{"n":1}')])
        store.add([row("dup", data='{"n":2}'), row("dup", data='{"n":3}')])
        assert store.count() == 1
        assert store.records()[0]["data"] == {"n": 1}


def test_higher_seq_replaces_the_figures_lower_does_not(store_url: str) -> None:
    def leave(seq: int, ts: int, transport: str, visible: int, **fields: Any) -> list[Row]:
        """A copy of one leave record, sent again with other figures."""
        data = f'{{"visible_ms":{visible}}}'
        fields.update(type="leave", seq=seq, ts=ts, transport=transport, data=data)
        return [row("leave1", **fields)]

    with open_store(store_url) as store:
        store.add(leave(1, 10, "fetchlater", 100))
        store.add(leave(3, 30, "beacon", 300, url="https://changed/"))
        store.add(leave(2, 20, "keepalive", 200))
        store.add(leave(3, 31, "keepalive", 301))  # an equal seq changes nothing either
        (stored,) = store.records()
    assert (stored["seq"], stored["ts"], stored["transport"], stored["data"]) == (
        3,
        30,
        "beacon",
        {"visible_ms": 300},
    )
    assert stored["url"] == "https://a.example/"  # only the figures change


def test_a_second_store_sees_committed_rows(store_url: str) -> None:
    with open_store(store_url) as writer, open_store(store_url) as reader:
        writer.add([row("x")])
        assert [record["id"] for record in reader.records()] == ["x"]


def test_reopening_keeps_rows(store_url: str) -> None:
    with open_store(store_url) as store:
        store.add([row("kept")])
    with open_store(store_url, create=False) as store:
        assert [record["id"] for record in store.records()] == ["kept"]


def test_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    with open_store(f"sqlite:///{path}") as store:
        store.add([row()])
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_sqlite_checkpoints_outside_commits(tmp_path: Path) -> None:
    path = tmp_path / "ck.db"
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, SQLiteStore)
    store.checkpoint_every = 0.05
    for chunk in range(20):
        store.add([row(f"c{chunk}-{n}", data='{"pad":"' + "x" * 500 + '"}') for n in range(100)])
    wal = path.with_name("ck.db-wal")
    assert wal.stat().st_size > 0
    deadline = time.monotonic() + 10
    # The checkpoint thread copies the WAL into the database file without any commit.
    while path.stat().st_size < 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.stat().st_size >= 1_000_000
    store.close()
    assert not wal.exists() or wal.stat().st_size == 0  # closing empties the WAL
    with open_store(f"sqlite:///{path}") as again:
        assert again.count() == 2000


def test_sqlite_relative_and_absolute_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///rel.db") as store:
        assert isinstance(store, SQLiteStore)
        store.add([row()])
    assert (tmp_path / "rel.db").is_file()
    with open_store(f"sqlite:///{tmp_path / 'rel.db'}") as store:  # sqlite:////abs/rel.db
        assert store.count() == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x/y", "unsupported database URL"),
        ("sitebeacon.db", "unsupported database URL"),
        ("sqlite://", "unsupported database URL"),
        ("sqlite:///", "give a file"),
        ("sqlite:///:memory:", "give a file"),
        ("sqlite:///no/such/dir/x.db", "does not exist"),
    ],
)
def test_bad_urls_are_clear_errors(url: str, message: str) -> None:
    with pytest.raises(SitebeaconError, match=message):
        open_store(url)


def test_missing_file_is_an_error_when_not_creating(tmp_path: Path) -> None:
    with pytest.raises(SitebeaconError, match="no database at"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}", create=False)
    assert not (tmp_path / "missing.db").exists()


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SitebeaconError, match="cannot open SQLite database"):
        open_store(f"sqlite:///{path}")


def test_unreachable_postgres_is_a_clear_error() -> None:
    # Port 1 on loopback: nothing listens there, the refusal is immediate.
    with pytest.raises(SitebeaconError, match="cannot connect to PostgreSQL"):
        open_store("postgresql://nobody@127.0.0.1:1/nothing")


# --- the group-commit writer: on the event loop (SQLite) and in a thread (PostgreSQL) -------


@pytest.fixture(params=[False, True], ids=["in-loop", "threaded"])
def threaded(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_each_store_picks_its_mode(store_url: str) -> None:
    with open_store(store_url) as store:
        assert GroupCommitWriter(store).threaded is store.url.startswith("postgresql")


async def _submit_many(writer: GroupCommitWriter, batches: Sequence[Sequence[Row]]) -> None:
    await asyncio.gather(*(writer.submit(rows) for rows in batches))


def test_writer_commits_before_the_future_completes(store_url: str, threaded: bool) -> None:
    with open_store(store_url) as store:
        writer = GroupCommitWriter(store, threaded=threaded)
        seen_at_completion: list[int] = []

        async def one() -> None:
            await writer.submit([row("w1")])
            seen_at_completion.append(store.count())

        asyncio.run(one())
        writer.close()
        assert seen_at_completion == [1]


def test_writer_groups_many_requests(store_url: str, threaded: bool) -> None:
    with open_store(store_url) as store:
        writer = GroupCommitWriter(store, threaded=threaded)
        batches = [[row(f"g{n}-{k}") for k in range(n % 3 + 1)] for n in range(300)]
        asyncio.run(_submit_many(writer, batches))
        writer.close()
        assert store.count() == sum(len(rows) for rows in batches)


class CountingStore(SQLiteStore):
    """A real SQLite store that also records how many transactions it committed."""

    transactions = 0

    def add(self, rows: Sequence[Row]) -> None:
        self.transactions += 1
        super().add(rows)


def test_writer_uses_fewer_transactions_than_requests(tmp_path: Path, threaded: bool) -> None:
    store = CountingStore(tmp_path / "c.db", "sqlite:///c.db")
    writer = GroupCommitWriter(store, threaded=threaded)
    asyncio.run(_submit_many(writer, [[row(f"c{n}")] for n in range(500)]))
    writer.close()
    assert store.count() == 500
    assert store.transactions < 500 / 10
    store.close()


def test_close_commits_what_was_submitted(tmp_path: Path, threaded: bool) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    writer = GroupCommitWriter(store, threaded=threaded)

    async def submit_and_leave() -> None:
        for n in range(100):
            writer.submit([row(f"late{n}")])  # nobody awaits: the loop ends right away

    asyncio.run(submit_and_leave())
    writer.close()
    assert store.count() == 100
    store.close()


def test_flush_from_another_thread(tmp_path: Path, threaded: bool) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    writer = GroupCommitWriter(store, threaded=threaded)
    counts: list[int] = []

    async def submit_then_flush() -> None:
        futures = [writer.submit([row(f"f{n}")]) for n in range(50)]

        def flush_and_count() -> None:
            writer.flush()
            counts.append(store.count())

        flusher = threading.Thread(target=flush_and_count)
        flusher.start()
        await asyncio.gather(*futures)
        await asyncio.get_running_loop().run_in_executor(None, flusher.join)

    asyncio.run(submit_then_flush())
    writer.close()
    assert counts == [50]
    store.close()


def test_after_close_submissions_fail_with_store_error(tmp_path: Path, threaded: bool) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    writer = GroupCommitWriter(store, threaded=threaded)
    writer.close()
    writer.close()  # idempotent

    async def late() -> None:
        with pytest.raises(StoreError):
            await writer.submit([row()])

    asyncio.run(late())
    assert store.count() == 0
    store.close()


class PoisonStore(SQLiteStore):
    """Refuses any transaction holding the id `poison`, as a broken disk block might."""

    def add(self, rows: Sequence[Row]) -> None:
        if any(item.id == "poison" for item in rows):
            raise StoreError("refused")
        super().add(rows)

    def try_add(self, rows: Sequence[Row]) -> bool:  # the event loop's way in
        if any(item.id == "poison" for item in rows):
            raise StoreError("refused")
        return super().try_add(rows)


def test_one_failing_request_does_not_fail_its_batch(tmp_path: Path, threaded: bool) -> None:
    store = PoisonStore(tmp_path / "p.db", "sqlite:///p.db")
    writer = GroupCommitWriter(store, threaded=threaded)

    async def run() -> list[BaseException | None]:
        futures = [writer.submit([row(f"ok{n}")]) for n in range(20)]
        futures.insert(10, writer.submit([row("poison")]))
        results = await asyncio.gather(*futures, return_exceptions=True)
        return list(results)

    results = asyncio.run(run())
    writer.close()
    assert [type(result) for result in results].count(StoreError) == 1
    assert isinstance(results[10], StoreError)
    assert store.count() == 20
    store.close()


# --- bounds and timeouts ---------------------------------------------------------------------


def test_rows_waiting_for_the_database_are_bounded(
    tmp_path: Path, threaded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that keeps a batch waiting (here: its write lock held by another connection)
    fills the queue; beyond MAX_WAITING_ROWS a submit fails at once (503), and once the lock is
    gone the rows that waited are committed."""
    monkeypatch.setattr("sitebeacon.collect.writer.MAX_WAITING_ROWS", 5)
    store = SQLiteStore(tmp_path / "q.db", "sqlite:///q.db")
    writer = GroupCommitWriter(store, threaded=threaded)
    holder = sqlite3.connect(tmp_path / "q.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    async def run() -> list[BaseException | None]:
        waiting = [writer.submit([row(f"q{n}")]) for n in range(5)]
        await asyncio.sleep(0.2)  # the batch is now with the writer thread, waiting for the lock
        with pytest.raises(StoreError, match="too many records waiting"):
            await writer.submit([row("over")])
        holder.execute("COMMIT")
        return list(await asyncio.gather(*waiting, return_exceptions=True))

    try:
        assert asyncio.run(run()) == [None] * 5
    finally:
        writer.close()
        holder.close()
    assert sorted(record["id"] for record in store.records()) == [f"q{n}" for n in range(5)]
    store.close()


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_postgres_connection_has_a_statement_timeout_and_keepalives(store_url: str) -> None:
    from sitebeacon.collect.stores.postgres import KEEPALIVES, STATEMENT_TIMEOUT

    with open_store(store_url) as store:
        db = store._db  # type: ignore[attr-defined]
        assert db.execute("SHOW statement_timeout").fetchone()[0] == STATEMENT_TIMEOUT
        parameters = db.info.get_parameters()
        for name, value in KEEPALIVES.items():
            assert parameters[name] == str(value), name
        store.add([row("after-timeout")])
        assert store.count() == 1
