"""The PostgreSQL store when the server goes away, for real: a throwaway PostgreSQL instance
(initdb + pg_ctl on a port and data directory of its own, so stopping it disturbs nobody)
behind the real `sitebeacon receive`, under load.

Stopped: answers become 503 with Retry-After, nothing answered 204 is lost, and storing
resumes when the server is back. Frozen (SIGSTOP, a server that accepts but never answers):
SIGTERM still ends the receiver, in bounded time, with exit code 0.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from files import start_receiver

from sitebeacon.collect.stores import open_store
from tests.conftest import require

TEXT = {"Content-Type": "text/plain"}


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Instance:
    """A PostgreSQL server of the test's own: initdb'd in a temporary directory."""

    def __init__(self, bin_dir: Path, root: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.data = root / "data"
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self.root = root

    def _run(self, *command: str) -> None:
        argv = [str(self.bin_dir / command[0]), *command[1:]]
        if os.geteuid() == 0:  # initdb refuses root: run as the postgres user
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def signal_all(self, signum: int) -> None:
        """Send `signum` to the postmaster and every backend it started."""
        parent = self.postmaster_pid()
        children = subprocess.run(
            ["pgrep", "-P", str(parent)], capture_output=True, text=True
        ).stdout.split()
        for pid in [parent, *map(int, children)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def instance() -> Iterator[Instance]:
    bin_dir = _pg_bin()
    require(bin_dir is not None, "PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    assert bin_dir is not None
    root = Path(tempfile.mkdtemp(prefix="sitebeacon-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = Instance(bin_dir, root, free_port())
    server.init()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.signal_all(signal.SIGCONT)
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


class Load:
    """Clients posting one record after another; who got which answer, in order."""

    def __init__(self, base: str, workers: int = 8) -> None:
        self.base = base
        self.accepted: list[str] = []
        self.answers: list[tuple[float, int, str | None]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._fire, args=(w,)) for w in range(workers)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def _fire(self, worker: int) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as client:
            n = 0
            while not self.stop.is_set():
                record_id = f"w{worker}-{n}"
                n += 1
                body = '{"v":1,"id":"%s","type":"pageview","url":"https://s/"}' % record_id  # noqa: UP031
                try:
                    answer = client.post("/collect", content=body, headers=TEXT)
                except httpx.HTTPError:
                    continue
                self.answers.append(
                    (time.monotonic(), answer.status_code, answer.headers.get("retry-after"))
                )
                if answer.status_code == 204:
                    self.accepted.append(record_id)
                else:
                    time.sleep(0.05)

    def wait_for(self, status: int, after: float, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(at > after and code == status for at, code, _ in list(self.answers)):
                return
            time.sleep(0.05)
        raise AssertionError(f"no {status} answer within {timeout} s")


def test_stopping_postgres_under_load_is_503_and_storing_resumes(instance: Instance) -> None:
    process, base = start_receiver(instance.url)
    try:
        with Load(base) as load:
            load.wait_for(204, after=0)
            time.sleep(0.5)
            stopped = time.monotonic()
            instance.stop()
            load.wait_for(503, after=stopped)
            time.sleep(1)
            restarted = time.monotonic()
            instance.start()
            load.wait_for(204, after=restarted)
            time.sleep(1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=90) == 0
    finally:
        if process.poll() is None:
            process.kill()
    codes = {code for _, code, _ in load.answers}
    assert codes == {204, 503}, codes
    assert {after for _, code, after in load.answers if code == 503} == {"5"}
    with open_store(instance.url) as store:
        stored = {row["id"] for row in store.records()}
    missing = set(load.accepted) - stored
    assert not missing, f"{len(missing)} records answered 204 but not stored"
    late = [at for at, code, _ in load.answers if code == 204 and at > restarted]
    assert late, "nothing was stored after PostgreSQL came back"


def test_sigterm_ends_the_receiver_even_when_postgres_hangs(instance: Instance) -> None:
    process, base = start_receiver(instance.url)
    try:
        with Load(base, workers=4) as load:
            load.wait_for(204, after=0)
            instance.signal_all(signal.SIGSTOP)  # accepts, never answers: no error, no 503
            time.sleep(2)
            asked = time.monotonic()
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=120)
            took = time.monotonic() - asked
            load.stop.set()
        instance.signal_all(signal.SIGCONT)
    finally:
        if process.poll() is None:
            process.kill()
    print(f"\nSIGTERM with PostgreSQL frozen: exit {returncode} after {took:.1f} s")
    assert returncode == 0
    with open_store(instance.url) as store:
        stored = {row["id"] for row in store.records()}
    missing = set(load.accepted) - stored
    assert not missing, f"{len(missing)} records answered 204 but not stored"
