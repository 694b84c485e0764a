"""The SQLite store's real failures: a write lock held by a second process, and a full disk
(a 2 MiB tmpfs). Nothing answered 204 is lost, the event loop keeps answering meanwhile, and
storing resumes by itself once the lock or the space is back."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from files import make_row

from sitebeacon.collect.server import running_receiver
from sitebeacon.collect.stores import StoreError, open_store
from sitebeacon.collect.stores.sqlite import SQLiteStore
from tests.conftest import require

TEXT = {"Content-Type": "text/plain"}

HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


def record(record_id: str, data_bytes: int = 0) -> bytes:
    fields: dict[str, object] = {"v": 1, "id": record_id, "type": "pageview"}
    fields["url"] = "https://site.example/"
    if data_bytes:
        fields["data"] = {"x": "a" * data_bytes}
    return json.dumps(fields).encode()


def ids(db_url: str) -> set[str]:
    with open_store(db_url) as store:
        return {row["id"] for row in store.records()}


@contextlib.contextmanager
def lock_held(path: Path) -> Iterator[subprocess.Popen[str]]:
    """SQLite's write lock on `path`, held by another process until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        with contextlib.suppress(BrokenPipeError):  # a test may have released it already
            holder.stdin.write("\n")
            holder.stdin.flush()
        assert holder.wait(timeout=30) == 0


def test_a_lock_held_by_another_process_delays_records_not_the_event_loop(
    tmp_path: Path,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'l.db'}"
    with running_receiver(db_url) as base, httpx.Client(base_url=base, timeout=30) as client:
        assert client.post("/collect", content=record("before"), headers=TEXT).status_code == 204
        outcome: list[int] = []
        with lock_held(tmp_path / "l.db"):
            waiting = threading.Thread(
                target=lambda: outcome.append(
                    httpx.post(
                        f"{base}/collect", content=record("held"), headers=TEXT, timeout=30
                    ).status_code
                )
            )
            waiting.start()
            time.sleep(1)  # ample time for the record to reach the receiver and wait there
            # While the record waits for the lock, the event loop still answers other requests:
            # these come back while the other process still holds the lock.
            for _ in range(20):
                assert client.post("/collect", content=b"{", headers=TEXT).status_code == 400
                assert client.get("/elsewhere").status_code == 404
            assert outcome == []  # still waiting: the lock is still held
        waiting.join(timeout=30)
        assert outcome == [204]
        assert client.post("/collect", content=record("after"), headers=TEXT).status_code == 204
    assert ids(db_url) == {"before", "held", "after"}


def test_a_lock_held_past_the_busy_timeout_is_503_then_storing_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sitebeacon.collect.stores.sqlite.BUSY_TIMEOUT_MS", 300)
    db_url = f"sqlite:///{tmp_path / 'b.db'}"
    with running_receiver(db_url) as base, httpx.Client(base_url=base, timeout=30) as client:
        with lock_held(tmp_path / "b.db"):
            answer = client.post("/collect", content=record("refused"), headers=TEXT)
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "5"
        assert client.post("/collect", content=record("later"), headers=TEXT).status_code == 204
    assert ids(db_url) == {"later"}


# --- a full disk ---------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, filled but for about 400 KiB by a file the test can delete."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    require(done.returncode == 0, f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        (mount / "filler").write_bytes(b"\0" * (1600 * 1024))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_summaries_wait_for_a_lock_held_elsewhere_and_salts_do_not(tmp_path: Path) -> None:
    # The report, import and the receiver's keeper write summaries beside a live receiver:
    # a lock its writer holds for a moment must delay them, not lose them. The daily salt is
    # asked for on the event loop: it fails at once instead (visitor ids resume later).
    path = tmp_path / "s.db"
    store = SQLiteStore(path, f"sqlite:///{path}")
    try:
        with lock_held(path) as holder:
            with pytest.raises(StoreError, match="locked"):
                store.daily_salt("2024-05-01")
            assert not store._db.in_transaction
            assert holder.stdin is not None
            release = threading.Timer(1.0, lambda: (holder.stdin.write("\n"), holder.stdin.flush()))
            release.start()
            started = time.monotonic()
            store.put_summaries(1, [("2024-05-01", b"summary")])
            assert time.monotonic() - started >= 0.5  # it waited for the other process
        assert store.query("SELECT day, summary FROM report_days") == [("2024-05-01", b"summary")]
        assert len(store.daily_salt("2024-05-01")) == 32
    finally:
        store.close()


def test_full_disk_rolls_back_and_the_connection_stays_usable(small_disk: Path) -> None:
    store = SQLiteStore(small_disk / "f.db", "sqlite:///f.db")
    stored = 0
    try:
        with pytest.raises(StoreError):
            for n in range(1000):
                row = make_row(
                    f"r{n}",
                    received_at="2024-01-01T00:00:00.000Z",
                    url="https://s/",
                    transport=None,
                    content_type=None,
                    fetch_mode=None,
                    data=json.dumps({"x": "a" * 16_000}),
                )
                if n % 2:
                    store.add([row])
                else:
                    assert store.try_add([row])
                stored += 1
        assert not store._db.in_transaction  # rolled back, not left inside the failed COMMIT
        (small_disk / "filler").unlink()
        assert store.try_add([row._replace(id="after")])
        store.add([row._replace(id="after2")])
        assert store.count() == stored + 2
    finally:
        store.close()


def test_full_disk_is_503_and_storing_resumes_once_space_is_freed(small_disk: Path) -> None:
    db_url = f"sqlite:///{small_disk / 'full.db'}"
    accepted: list[str] = []
    with running_receiver(db_url) as base, httpx.Client(base_url=base, timeout=30) as client:
        statuses = []
        for n in range(400):
            answer = client.post("/collect", content=record(f"f{n}", 16_000), headers=TEXT)
            statuses.append(answer.status_code)
            if answer.status_code == 204:
                accepted.append(f"f{n}")
            elif len(statuses) > 5 and statuses[-5:] == [503] * 5:
                break
        assert set(statuses) == {204, 503}, statuses
        assert answer.headers["retry-after"] == "5"
        (small_disk / "filler").unlink()
        for n in range(5):
            answer = client.post("/collect", content=record(f"g{n}", 16_000), headers=TEXT)
            assert answer.status_code == 204
            accepted.append(f"g{n}")
    assert set(accepted) <= ids(db_url)
