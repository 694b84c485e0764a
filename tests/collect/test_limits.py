"""Safe on the open internet: every limit of `collect/limits.py` over real sockets.

Stalled headers and bodies are cut off (408, closed), headers over the bound get 431, bodies
over 64 KiB get 413 whatever the framing, beyond the connection limit or the buffered-bytes
bound a 503 says Retry-After. The deadlines are shortened here (monkeypatch) so each test
takes a second or two; `test_slowloris.py` runs the real ones against `sitebeacon receive`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sitebeacon.collect.server import running_receiver
from sitebeacon.collect.stores import open_store
from sitebeacon.protocol import MAX_BODY

HEAD = b"POST /collect HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"


def body(record_id: str) -> bytes:
    return json.dumps(
        {"v": 1, "id": record_id, "type": "pageview", "url": "https://site.example/"}
    ).encode()


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def read_until_closed(sock: socket.socket, limit: float = 10) -> bytes:
    """Everything the server sends until it closes the connection (fails after `limit` s)."""
    sock.settimeout(limit)
    received = b""
    while True:
        try:
            chunk = sock.recv(65_536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'r.db'}"


@pytest.fixture
def fast_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sitebeacon.collect.server.BODY_DEADLINE", 1.0)
    monkeypatch.setattr("sitebeacon.collect.server.HEADER_DEADLINE", 1.0)
    monkeypatch.setattr("sitebeacon.collect.server.SWEEP_EVERY", 0.2)


@pytest.fixture
def base(db_url: str, fast_deadlines: None) -> Iterator[str]:
    with running_receiver(db_url) as url:
        yield url


def ids(db_url: str) -> set[str]:
    with open_store(db_url) as store:
        return {row["id"] for row in store.records()}


# --- 413 whatever the framing ------------------------------------------------------------


@pytest.mark.parametrize("parts", [1, 3, 40])
def test_chunked_body_over_64_kib_is_413_in_any_number_of_parts(
    base: str, db_url: str, parts: int
) -> None:
    payload = body("big") + b" " * MAX_BODY  # valid JSON, one byte too many and more
    size = -(-len(payload) // parts)
    chunks = [payload[start : start + size] for start in range(0, len(payload), size)]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
    with connect(base) as sock:
        # One sendall: the whole body usually reaches the app as a single ASGI message.
        sock.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + framed)
        answer = read_until_closed(sock)
    assert status(answer) == 413, answer[:200]
    assert ids(db_url) == set()


def test_chunked_body_of_exactly_64_kib_is_stored(base: str, db_url: str) -> None:
    payload = body("edge")
    payload += b" " * (MAX_BODY - len(payload))
    with connect(base) as sock:
        sock.sendall(HEAD + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload))
        assert status(read_until_closed(sock)) == 204
    assert ids(db_url) == {"edge"}


# --- deadlines -----------------------------------------------------------------------------


def test_a_stalled_body_gets_408_and_the_connection_is_closed(base: str, db_url: str) -> None:
    with connect(base) as sock:
        sock.sendall(HEAD + b"Content-Length: 60000\r\n\r\n" + b'{"v":1,')
        answer = read_until_closed(sock)
    assert status(answer) == 408
    assert b"connection: close" in answer.lower()
    assert ids(db_url) == set()


def test_a_body_trickled_past_the_deadline_gets_408(base: str) -> None:
    with connect(base) as sock:
        sock.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        sock.settimeout(0.2)
        answer = b""
        for _ in range(30):  # one byte every 0.2 s: each part arrives, the whole never does
            try:
                sock.sendall(b"1\r\n \r\n")
                answer += sock.recv(4096)
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                continue
            if answer:
                break
        answer += read_until_closed(sock)
    assert status(answer) == 408


@pytest.mark.parametrize(
    "sent",
    [b"", b"POST /coll", HEAD, HEAD + b"Content-Length: 5"],
    ids=["nothing", "half-request-line", "no-blank-line", "half-header"],
)
def test_a_stalled_header_gets_408_and_the_connection_is_closed(base: str, sent: bytes) -> None:
    with connect(base) as sock:
        sock.sendall(sent)
        started = time.monotonic()
        answer = read_until_closed(sock)
    assert status(answer) == 408
    assert time.monotonic() - started < 9  # the 1 s deadline, not some other timeout


def test_the_header_deadline_restarts_for_each_request_on_a_kept_alive_connection(
    base: str, db_url: str
) -> None:
    with connect(base) as sock:
        for n in range(3):  # each request 0.6 s after the previous: 1.8 s in all, deadline 1 s
            time.sleep(0.6)
            payload = body(f"k{n}")
            sock.sendall(HEAD + b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
            assert status(sock.recv(4096)) == 204
    assert ids(db_url) == {"k0", "k1", "k2"}


def test_a_connection_answered_before_its_body_is_still_held_to_the_deadlines(
    base: str,
) -> None:
    """A 404 is sent without reading the body; the body's rest, then nothing: the idle
    connection must still be closed (uvicorn's keep-alive timer stops at the first byte)."""
    with connect(base) as sock:
        sock.sendall(b"POST /elsewhere HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n12345")
        assert status(sock.recv(4096)) == 404
        sock.sendall(b"6789012345678901")  # the rest of the body, then silence
        started = time.monotonic()
        read_until_closed(sock)
    assert time.monotonic() - started < 9


def test_a_header_over_16_kib_gets_431(base: str) -> None:
    with connect(base) as sock:
        try:
            sock.sendall(HEAD)
            for _ in range(40):
                sock.sendall(b"X-Filler: " + b"a" * 1000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_until_closed(sock)
    assert status(answer) == 431


# --- bounds ----------------------------------------------------------------------------------


def test_beyond_the_connection_limit_503_with_retry_after(db_url: str) -> None:
    with running_receiver(db_url, max_connections=3) as base:
        held = [connect(base) for _ in range(3)]
        try:
            time.sleep(0.3)  # let the server accept them
            answer = httpx.post(
                f"{base}/collect", content=body("over"), headers={"Content-Type": "text/plain"}
            )
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "5"
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.3)
        answer = httpx.post(
            f"{base}/collect", content=body("after"), headers={"Content-Type": "text/plain"}
        )
        assert answer.status_code == 204
    assert ids(db_url) == {"after"}


def test_buffered_body_bytes_are_bounded(
    db_url: str, fast_deadlines: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sitebeacon.collect.app.MAX_BUFFERED", 100_000)
    part = b" " * 40_000
    with running_receiver(db_url) as base:
        held = []
        try:
            for _ in range(2):  # 80,000 bytes held, each body waiting for its end
                sock = connect(base)
                sock.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                held.append(sock)
                time.sleep(0.2)
            with connect(base) as third:
                third.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
                third.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                answer = read_until_closed(third)
            assert status(answer) == 503
            assert b"retry-after: 5" in answer.lower()
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.3)  # the held bodies are given back when their requests end
        answer = httpx.post(
            f"{base}/collect", content=body("after"), headers={"Content-Type": "text/plain"}
        )
        assert answer.status_code == 204
    assert ids(db_url) == {"after"}


def test_max_connections_below_one_is_a_one_line_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sitebeacon.cli", "receive", "--max-connections", "0",
         "--db", f"sqlite:///{tmp_path / 'x.db'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == "sitebeacon: --max-connections must be at least 1, not 0\n"
    assert not (tmp_path / "x.db").exists()
