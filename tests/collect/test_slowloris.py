"""5,000 stalled connections against the real `sitebeacon receive`, with its real deadlines.

A quarter announce a 60,000-byte body and stall after 1,000 bytes of it, a quarter stall in a
chunked body, a quarter send half a request line, a quarter send nothing. Meanwhile four
clients send valid records one after the other. The server must close every stalled
connection (408) within 20 s of their opening, every valid record must be answered 204 and
stored. The valid records' p99 latency is printed (`pytest -s`), not asserted: the machine's
load decides it (README, "Safe on the open internet", has the figures).
"""

from __future__ import annotations

import json
import re
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sitebeacon.collect.stores import open_store

STALLED = 5_000
WITHIN = 20.0
CLIENT_SECONDS = 18.0
VALID_CLIENTS = """
import json, sys, threading, time
import httpx

base, seconds = sys.argv[1], float(sys.argv[2])
latencies, accepted, refused = [], [], []
stop = time.monotonic() + seconds

def client(worker):
    with httpx.Client(base_url=base, timeout=30) as http:
        n = 0
        while time.monotonic() < stop:
            record_id = f"v{worker}-{n}"
            n += 1
            body = json.dumps({"v": 1, "id": record_id, "type": "pageview", "url": "https://s/"})
            started = time.perf_counter()
            answer = http.post("/collect", content=body, headers={"Content-Type": "text/plain"})
            latencies.append(time.perf_counter() - started)
            if answer.status_code == 204:
                accepted.append(record_id)
            else:
                refused.append(answer.status_code)
            time.sleep(0.005)

threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"latencies": latencies, "accepted": accepted, "refused": refused}))
"""
KINDS = (
    b"POST /collect HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 60000\r\n\r\n" + b" " * 1000,
    b"POST /collect HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n3e8\r\n" + b" " * 1000 + b"\r\n",
    b"POST /collect HTT",
    b"",
)


def _low_fd_limit() -> None:
    """The server starts with the usual soft limit: `receive` must raise it itself."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))


def test_5000_stalled_connections_are_closed_while_records_flow(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= STALLED + 1024, f"the hard fd limit ({hard}) is too low for this test"
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    db_url = f"sqlite:///{tmp_path / 'slow.db'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "sitebeacon.cli", "receive", "--db", db_url, "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_low_fd_limit,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"http://(127\.0\.0\.1):(\d+)/collect", line)
        assert match, line
        address = (match.group(1), int(match.group(2)))
        base = f"http://{address[0]}:{address[1]}"

        # The valid records come from a process of their own, so that the latencies measured
        # are the receiver's, not this process's busy selector loop's.
        clients = subprocess.Popen(
            [sys.executable, "-c", VALID_CLIENTS, base, str(CLIENT_SECONDS)],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1)

        selector = selectors.DefaultSelector()
        opened = time.monotonic()
        for n in range(STALLED):
            sock = socket.create_connection(address, timeout=10)
            sock.sendall(KINDS[n % len(KINDS)])
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, bytearray())
        open_seconds = time.monotonic() - opened

        closed_at: list[float] = []
        answers: dict[int, int] = {}
        while len(closed_at) < STALLED and time.monotonic() - opened < WITHIN + 10:
            for key, _ in selector.select(timeout=1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(65_536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    key.data.extend(chunk)
                    continue
                closed_at.append(time.monotonic() - opened)
                status = int(key.data.split(b" ", 2)[1]) if key.data else 0
                answers[status] = answers.get(status, 0) + 1
                selector.unregister(sock)
                sock.close()
        still_open = len(selector.get_map())
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()

        outcome = json.loads(clients.communicate(timeout=120)[0])
        latencies, accepted, refused = outcome["latencies"], outcome["accepted"], outcome["refused"]
        during = sorted(latencies)
        p99 = during[int(len(during) * 0.99) - 1] if during else float("nan")
        print(
            f"\n{STALLED} stalled connections opened in {open_seconds:.1f} s, "
            f"all closed by {max(closed_at, default=0):.1f} s after the first opened "
            f"(median {statistics.median(closed_at or [0]):.1f} s), answers {answers}; "
            f"valid records meanwhile: {len(during)}, "
            f"p50 {statistics.median(during) * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms, non-204 {len(refused)}"
        )
        assert still_open == 0, f"{still_open} stalled connections still open"
        assert max(closed_at) < WITHIN
        assert answers == {408: STALLED}
        assert refused == []
        assert len(during) > 100
    finally:
        process.terminate()
        process.wait(timeout=60)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with open_store(db_url) as store:
        stored = {row["id"] for row in store.records()}
    missing = set(accepted) - stored
    assert not missing, f"{len(missing)} records answered 204 but not stored"
