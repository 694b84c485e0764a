"""The receiver over real HTTP (uvicorn on 127.0.0.1): every answer code of protocol.md,
every content type, CORS, dedup, SIGTERM under load, and fuzzing (in-process and real)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from files import post_to_app, start_receiver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sitebeacon.collect.app import create_app
from sitebeacon.collect.server import running_receiver
from sitebeacon.collect.stores import Store, StoreError, open_store
from sitebeacon.collect.stores.sqlite import SQLiteStore
from sitebeacon.collect.types import Row

BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
TEXT = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": BROWSER_UA}


def record(record_id: str = "r1", **fields: Any) -> dict[str, Any]:
    return {"v": 1, "id": record_id, "type": "pageview", "url": "https://site.example/", **fields}


def stored(db_url: str) -> list[dict[str, Any]]:
    with open_store(db_url) as store:
        return store.records()


@pytest.fixture
def receiver(store_url: str) -> Iterator[tuple[httpx.Client, str]]:
    """A running receiver on both stores, and a client pointed at its collect URL."""
    with running_receiver(store_url) as base, httpx.Client(base_url=base) as client:
        yield client, store_url


@contextlib.contextmanager
def sqlite_client(tmp_path: Path, **options: Any) -> Iterator[tuple[httpx.Client, str]]:
    """A receiver on a fresh SQLite file, run with `options`, and a client pointed at it."""
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    with running_receiver(db_url, **options) as base, httpx.Client(base_url=base) as client:
        yield client, db_url


@pytest.fixture
def sqlite_receiver(tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    """Same, SQLite only: for answer codes whose store does not matter."""
    with sqlite_client(tmp_path) as receiver:
        yield receiver


# --- content types ---------------------------------------------------------------------


def test_text_plain_record_is_stored_with_request_facts(
    receiver: tuple[httpx.Client, str],
) -> None:
    client, db_url = receiver
    body = json.dumps(record(ref="https://ref/", ts=17, transport="beacon", data={"a": 1}))
    answer = client.post("/collect", content=body, headers={**TEXT, "Sec-Fetch-Mode": "no-cors"})
    assert answer.status_code == 204
    assert answer.content == b""
    (row,) = stored(db_url)
    assert (row["id"], row["type"], row["url"], row["referrer"], row["ts"]) == (
        "r1",
        "pageview",
        "https://site.example/",
        "https://ref/",
        17,
    )
    assert (row["transport"], row["data"], row["bot"]) == ("beacon", {"a": 1}, False)
    assert row["content_type"] == "text/plain;charset=UTF-8"
    assert row["fetch_mode"] == "no-cors"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row["received_at"])
    assert "ip" not in row and "127.0.0.1" not in json.dumps(row)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/json",
        "Application/JSON; charset=utf-8",
    ],
)
def test_json_content_types(sqlite_receiver: tuple[httpx.Client, str], content_type: str) -> None:
    client, db_url = sqlite_receiver
    answer = client.post(
        "/collect", content=json.dumps(record("ct")), headers={"Content-Type": content_type}
    )
    assert answer.status_code == 204
    assert [row["content_type"] for row in stored(db_url)] == [content_type]


def test_json_batch(receiver: tuple[httpx.Client, str]) -> None:
    client, db_url = receiver
    batch = [record(f"b{n}", type="leave", data={"visible_ms": n}) for n in range(100)]
    answer = client.post("/collect", json=batch)
    assert answer.status_code == 204
    rows = stored(db_url)
    assert [row["id"] for row in rows] == [f"b{n}" for n in range(100)]
    assert rows[42]["data"] == {"visible_ms": 42}


def test_form_encoding(receiver: tuple[httpx.Client, str]) -> None:
    client, db_url = receiver
    form = {
        "v": "1",
        "id": "form1",
        "type": "leave",
        "url": "https://site.example/ü",
        "ts": "1700000000000",
        "seq": "2",
        "transport": "keepalive",
        "data": json.dumps({"visible_ms": 4200}),
    }
    answer = client.post(
        "/collect",
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 204
    (row,) = stored(db_url)
    assert (row["id"], row["url"], row["ts"], row["seq"], row["transport"]) == (
        "form1",
        "https://site.example/ü",
        1_700_000_000_000,
        2,
        "keepalive",
    )
    assert row["data"] == {"visible_ms": 4200}


def test_a_ping(receiver: tuple[httpx.Client, str]) -> None:
    client, db_url = receiver
    headers = {
        "Content-Type": "text/ping",
        "Ping-From": "https://site.example/a",
        "Ping-To": "https://elsewhere.example/",
        "Sec-Fetch-Mode": "no-cors",
        "User-Agent": BROWSER_UA,
    }
    for _ in range(2):
        assert client.post("/collect", content=b"PING", headers=headers).status_code == 204
    rows = stored(db_url)
    assert len(rows) == 2  # every click is its own record
    assert {row["id"] for row in rows} == {rows[0]["id"], rows[1]["id"]}
    assert rows[0]["id"] != rows[1]["id"]
    for row in rows:
        assert (row["type"], row["transport"], row["url"], row["target"], row["fetch_mode"]) == (
            "outbound",
            "ping",
            "https://site.example/a",
            "https://elsewhere.example/",
            "no-cors",
        )


def test_ping_without_ping_from_uses_the_referer(
    sqlite_receiver: tuple[httpx.Client, str],
) -> None:
    client, db_url = sqlite_receiver
    headers = {
        "Content-Type": "text/ping",
        "Ping-To": "https://elsewhere.example/",
        "Referer": "https://site.example/",
    }
    assert client.post("/collect", content=b"PING", headers=headers).status_code == 204
    (row,) = stored(db_url)
    assert (row["url"], row["target"]) == ("https://site.example/", "https://elsewhere.example/")


def test_ping_without_ping_to_is_refused(sqlite_receiver: tuple[httpx.Client, str]) -> None:
    client, db_url = sqlite_receiver
    answer = client.post(
        "/collect",
        content=b"PING",
        headers={"Content-Type": "text/ping", "Ping-From": "https://a/"},
    )
    assert answer.status_code == 400
    assert "Ping-To" in answer.text
    assert stored(db_url) == []


def test_bot_user_agents_are_stored_and_flagged(sqlite_receiver: tuple[httpx.Client, str]) -> None:
    client, db_url = sqlite_receiver
    client.post("/collect", json=record("human"), headers={"User-Agent": BROWSER_UA})
    client.post(
        "/collect",
        json=record("crawler"),
        headers={"User-Agent": "Mozilla/5.0 (compatible; bingbot/2.0)"},
    )
    assert {row["id"]: row["bot"] for row in stored(db_url)} == {"human": False, "crawler": True}


# --- dedup -------------------------------------------------------------------------------


def test_repeated_id_answers_204_and_adds_no_row(receiver: tuple[httpx.Client, str]) -> None:
    client, db_url = receiver
    for _ in range(3):
        assert client.post("/collect", json=record("same")).status_code == 204
    assert client.post("/collect", json=[record("same"), record("same")]).status_code == 204
    assert [row["id"] for row in stored(db_url)] == ["same"]


def test_higher_seq_replaces_figures(receiver: tuple[httpx.Client, str]) -> None:
    client, db_url = receiver
    leave = record("visit", type="leave", transport="fetchlater", seq=0, data={"visible_ms": 1})
    assert client.post("/collect", json=leave).status_code == 204
    later = {**leave, "seq": 2, "transport": "beacon", "data": {"visible_ms": 9}}
    assert client.post("/collect", json=later).status_code == 204
    stale = {**leave, "seq": 1, "data": {"visible_ms": 5}}
    assert client.post("/collect", json=stale).status_code == 204
    (row,) = stored(db_url)
    assert (row["seq"], row["transport"], row["data"]) == (2, "beacon", {"visible_ms": 9})


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "malformed JSON"),
        (b"", "malformed JSON"),
        (b"[]", "empty batch"),
        (json.dumps(record(v=2)).encode(), "v is not 1"),
        (json.dumps({"v": 1, "type": "pageview", "url": "u"}).encode(), "id missing"),
        (json.dumps(record(url="u" * 3000)).encode(), "url over 2048"),
        (json.dumps(record(type="Bad Type")).encode(), "type missing or not"),
        (json.dumps(record(data=[1, 2])).encode(), "data is not an object"),
        (json.dumps([record(f"x{n}") for n in range(101)]).encode(), "at most 100"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_400_with_a_short_reason(
    sqlite_receiver: tuple[httpx.Client, str], body: bytes, reason: str
) -> None:
    client, db_url = sqlite_receiver
    answer = client.post("/collect", content=body, headers=TEXT)
    assert answer.status_code == 400
    assert reason in answer.text
    assert len(answer.text) < 200
    assert stored(db_url) == []


def test_mixed_batch_stores_the_good_records(receiver: tuple[httpx.Client, str]) -> None:
    client, db_url = receiver
    batch = [record("good1"), record("bad", v=3), record("good2"), 17]
    answer = client.post("/collect", json=batch)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "stored": 2,
        "rejected": [
            {"index": 1, "reason": "v is not 1"},
            {"index": 3, "reason": "record is not a JSON object"},
        ],
    }
    assert [row["id"] for row in stored(db_url)] == ["good1", "good2"]
    # Resending the same batch is harmless: ids dedupe.
    assert client.post("/collect", json=batch).json()["stored"] == 2
    assert len(stored(db_url)) == 2


def padded(size: int) -> bytes:
    """A valid record padded with JSON whitespace to exactly `size` bytes."""
    body = json.dumps(record("big")).encode()
    return body + b" " * (size - len(body))


def test_64_kib_exactly_is_accepted(sqlite_receiver: tuple[httpx.Client, str]) -> None:
    client, db_url = sqlite_receiver
    assert client.post("/collect", content=padded(65_536), headers=TEXT).status_code == 204
    assert len(stored(db_url)) == 1


def test_413_by_content_length(sqlite_receiver: tuple[httpx.Client, str]) -> None:
    client, db_url = sqlite_receiver
    answer = client.post("/collect", content=padded(65_537), headers=TEXT)
    assert answer.status_code == 413
    assert stored(db_url) == []


def test_413_while_streaming_without_content_length(
    sqlite_receiver: tuple[httpx.Client, str],
) -> None:
    client, db_url = sqlite_receiver
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(1000):  # up to 16 MB; the receiver must stop reading long before
            sent += 16_384
            yield b" " * 16_384

    try:
        answer = client.post("/collect", content=chunks(), headers=TEXT)
        assert answer.status_code == 413
    except httpx.HTTPError:
        pass  # the server may close the connection while the client is still sending
    assert stored(db_url) == []
    # The receiver is still fine afterwards.
    assert client.post("/collect", json=record("after")).status_code == 204


def test_chunked_body_under_the_limit_is_accepted(
    sqlite_receiver: tuple[httpx.Client, str],
) -> None:
    client, db_url = sqlite_receiver
    body = json.dumps([record(f"c{n}") for n in range(50)]).encode()
    parts = [body[index : index + 100] for index in range(0, len(body), 100)]
    answer = client.post("/collect", content=iter(parts), headers=TEXT)
    assert answer.status_code == 204
    assert len(stored(db_url)) == 50


@pytest.mark.parametrize(
    "content_type",
    [None, "text/html", "multipart/form-data; boundary=x", "application/xml", "text/plainx"],
)
def test_415(sqlite_receiver: tuple[httpx.Client, str], content_type: str | None) -> None:
    client, db_url = sqlite_receiver
    request = client.build_request("POST", "/collect", content=json.dumps(record()))
    request.headers.pop("Content-Type", None)  # httpx sets none for raw content; be sure
    if content_type is not None:
        request.headers["Content-Type"] = content_type
    assert client.send(request).status_code == 415
    assert stored(db_url) == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD"])
def test_405(sqlite_receiver: tuple[httpx.Client, str], method: str) -> None:
    client, _ = sqlite_receiver
    answer = client.request(method, "/collect")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST, OPTIONS"


def test_other_paths_are_404(sqlite_receiver: tuple[httpx.Client, str]) -> None:
    client, _ = sqlite_receiver
    assert client.post("/other", json=record()).status_code == 404
    assert client.get("/").status_code == 404


# --- origins and CORS ----------------------------------------------------------------------


def test_without_allow_list_only_same_origin(sqlite_receiver: tuple[httpx.Client, str]) -> None:
    client, db_url = sqlite_receiver
    own = str(client.base_url).rstrip("/")
    assert client.post("/collect", json=record("same"), headers={"Origin": own}).status_code == 204
    foreign = client.post(
        "/collect", json=record("foreign"), headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    null = client.post("/collect", json=record("null"), headers={"Origin": "null"})
    assert null.status_code == 403
    other_port = client.post(
        "/collect", json=record("port"), headers={"Origin": "http://127.0.0.1:1"}
    )
    assert other_port.status_code == 403
    assert [row["id"] for row in stored(db_url)] == ["same"]


def test_allowed_origin_gets_cors_headers(tmp_path: Path) -> None:
    site = "https://site.example"
    with sqlite_client(tmp_path, allow_origins=[site]) as (client, db_url):
        answer = client.post("/collect", json=record("cors"), headers={"Origin": site})
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == site
        assert answer.headers["access-control-allow-credentials"] == "true"
        assert "Origin" in answer.headers["vary"]
        refused = client.post(
            "/collect", json=record("no"), headers={"Origin": "https://site.example.evil"}
        )
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers
        # Errors to an allowed origin carry the CORS headers too, so a page can read them.
        bad = client.post("/collect", content=b"{", headers={**TEXT, "Origin": site})
        assert bad.status_code == 400
        assert bad.headers["access-control-allow-origin"] == site
    assert [row["id"] for row in stored(db_url)] == ["cors"]


def test_preflight(tmp_path: Path) -> None:
    site = "http://localhost:8000"
    with sqlite_client(tmp_path, allow_origins=[site]) as (client, db_url):
        preflight = {
            "Origin": site,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        answer = client.options("/collect", headers=preflight)
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == site
        assert answer.headers["access-control-allow-credentials"] == "true"
        assert "POST" in answer.headers["access-control-allow-methods"]
        assert answer.headers["access-control-allow-headers"].lower() == "content-type"
        assert "Origin" in answer.headers["vary"]
        denied = client.options("/collect", headers={**preflight, "Origin": "http://other"})
        assert denied.status_code == 403
        assert "access-control-allow-origin" not in denied.headers
    assert stored(db_url) == []


def test_null_origin_only_when_listed(tmp_path: Path) -> None:
    with sqlite_client(tmp_path, allow_origins=["null"]) as (client, _):
        answer = client.post("/collect", json=record("sandboxed"), headers={"Origin": "null"})
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == "null"


def test_allow_any_origin_with_star(tmp_path: Path) -> None:
    with sqlite_client(tmp_path, allow_origins=["*"]) as (client, _):
        answer = client.post("/collect", json=record("any"), headers={"Origin": "https://x.y"})
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == "https://x.y"
        assert (
            client.post("/collect", json=record("nul"), headers={"Origin": "null"}).status_code
            == 403
        )


# --- the static site ---------------------------------------------------------------------


def test_serves_the_site_on_the_same_origin(tmp_path: Path) -> None:
    site = tmp_path / "_site"
    (site / "about").mkdir(parents=True)
    (site / "index.html").write_text("<h1>home</h1>")
    (site / "about" / "index.html").write_text("<h1>about</h1>")
    with sqlite_client(tmp_path, site_dir=site) as (client, db_url):
        base = str(client.base_url).rstrip("/")
        assert client.get("/").text == "<h1>home</h1>"
        assert client.get("/about/").text == "<h1>about</h1>"
        assert client.get("/missing.html").status_code == 404
        assert client.post("/index.html").status_code == 405
        assert (
            client.post("/collect", json=record("s"), headers={"Origin": base}).status_code == 204
        )
    assert [row["id"] for row in stored(db_url)] == ["s"]


def test_missing_site_dir_is_a_clear_error(tmp_path: Path) -> None:
    from sitebeacon.errors import SitebeaconError

    with (
        pytest.raises(SitebeaconError, match="does not exist"),
        running_receiver(f"sqlite:///{tmp_path / 'x.db'}", site_dir=tmp_path / "nope"),
    ):
        pass


# --- a failing store ---------------------------------------------------------------------


class BrokenDiskStore(SQLiteStore):
    """A real SQLite store whose disk has gone away: every write fails."""

    def add(self, rows: Sequence[Row]) -> None:
        raise StoreError("disk I/O error")

    def try_add(self, rows: Sequence[Row]) -> bool:  # the event loop's way in
        raise StoreError("disk I/O error")


def test_store_failure_is_503_not_500(tmp_path: Path) -> None:
    store = BrokenDiskStore(tmp_path / "b.db", "sqlite:///b.db")
    answer = post_to_app(store, json=record())
    store.close()
    assert answer.status_code == 503
    assert answer.headers["retry-after"]


# --- SIGTERM during load ---------------------------------------------------------------------


def test_sigterm_during_load_loses_no_accepted_record(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'term.db'}"
    process, base = start_receiver(db_url)

    accepted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def fire(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            for n in range(100_000):
                if stop.is_set():
                    return
                record_id = f"w{worker}-{n}"
                try:
                    answer = client.post("/collect", json=record(record_id))
                except httpx.HTTPError:
                    if process.poll() is not None:
                        return
                    continue
                if answer.status_code == 204:
                    with lock:
                        accepted.append(record_id)

    with ThreadPoolExecutor(max_workers=16) as pool:
        for worker in range(16):
            pool.submit(fire, worker)
        deadline = time.monotonic() + 30
        while len(accepted) < 1500 and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=60)
        stop.set()

    assert returncode == 0
    assert len(accepted) >= 1500
    ids = {row["id"] for row in stored(db_url)}
    assert len(ids) >= len(accepted)
    missing = set(accepted) - ids
    assert not missing, f"{len(missing)} records answered 204 but not stored"


def test_sigint_also_stops_cleanly(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'int.db'}"
    process, base = start_receiver(db_url)
    assert httpx.post(f"{base}/collect", json=record("i")).status_code == 204
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert [row["id"] for row in stored(db_url)] == ["i"]


def test_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "sitebeacon.cli",
                "receive",
                "--db",
                f"sqlite:///{tmp_path / 'x.db'}",
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert result.stderr.startswith("sitebeacon: cannot listen on")
    assert "Traceback" not in result.stderr


# --- fuzzing ---------------------------------------------------------------------------------

HEADER_NAMES = [
    b"content-type",
    b"content-length",
    b"origin",
    b"host",
    b"user-agent",
    b"ping-from",
    b"ping-to",
    b"sec-fetch-mode",
    b"x-anything",
    b"transfer-encoding",
]
CONTENT_TYPES = [
    b"text/plain",
    b"text/plain;charset=UTF-8",
    b"application/json",
    b"text/ping",
    b"application/x-www-form-urlencoded",
    b"text/html",
    b"",
    b"\xff\xfe",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
record_like = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 1, 2, "1", True, None, 1.0]),
        "id": st.text(max_size=70) | st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
        "type": st.sampled_from(["pageview", "leave", "outbound", "x", "Bad"]) | st.text(),
        "url": st.text(max_size=40) | st.integers(),
        "ref": json_values,
        "ts": json_values,
        "seq": json_values,
        "data": json_values,
        "transport": st.sampled_from(["beacon", "ping", "x"]) | json_values,
        "target": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    record_like.map(lambda value: json.dumps(value).encode()),
    st.lists(record_like, max_size=5).map(lambda value: json.dumps(value).encode()),
    st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=6).map(
        lambda value: urlencode(value).encode()
    ),
)
headers = st.lists(
    st.tuples(
        st.sampled_from(HEADER_NAMES), st.sampled_from(CONTENT_TYPES) | st.binary(max_size=40)
    ),
    max_size=6,
)
methods = st.sampled_from(["POST", "POST", "POST", "OPTIONS", "GET", "PUT", "BREW", ""])
paths = st.sampled_from(["/collect", "/collect", "/", "/collect/", "/%00"])


async def call_asgi(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[int, bytes]:
    """Drive the ASGI app directly, the body split into `chunks` (like a chunked upload)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5),
        "server": ("127.0.0.1", 80),
    }
    pending = list(chunks) or [b""]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = [message for message in sent if message["type"] == "http.response.start"]
    assert len(start) == 1, sent
    body = b"".join(
        message.get("body", b"") for message in sent if message["type"] == "http.response.body"
    )
    return start[0]["status"], body


def assert_no_error_logged(caplog: pytest.LogCaptureFixture) -> None:
    """The receiver turns a bug of its own into a 400 and logs it: a fuzz run that logged an
    error found a bug, whatever the client was answered."""
    errors = [entry for entry in caplog.records if entry.levelno >= logging.ERROR]
    assert not errors, [entry.getMessage() for entry in errors]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Store]]:
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'f.db'}")
    app = create_app(store, allow_origins=["https://allowed.example"])
    yield app, store
    app.close()
    store.close()


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # caplog, cleared in each example
    ],
)
@given(
    method=methods,
    path=paths,
    headers=headers,
    body=bodies,
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=3),
)
def test_fuzz_asgi_never_5xx(
    fuzz_app: tuple[Any, Store],
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    cuts: list[int],
) -> None:
    app, store = fuzz_app
    points = sorted({min(cut, len(body)) for cut in cuts})
    chunks = [
        body[start:end] for start, end in zip([0, *points], [*points, len(body)], strict=True)
    ]

    async def run() -> None:
        caplog.clear()
        status, _ = await call_asgi(app, method, path, headers, chunks)
        assert status < 500, status
        assert_no_error_logged(caplog)
        valid = json.dumps(record(f"after-{os.urandom(6).hex()}")).encode()
        status, _ = await call_asgi(
            app, "POST", "/collect", [(b"content-type", b"text/plain")], [valid]
        )
        assert status == 204
        record_id = json.loads(valid)["id"]
        assert any(row["id"] == record_id for row in store.records()[-20:])

    asyncio.run(run())


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('live') / 'l.db'}"
    with running_receiver(db_url, allow_origins=["https://allowed.example"]) as base:
        yield base, db_url


def _printable(value: bytes) -> bytes:
    """Header values a client library will put on the wire (no control characters)."""
    return bytes(byte for byte in value if byte >= 0x20 and byte != 0x7F)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(
    method=st.sampled_from(["POST", "POST", "OPTIONS", "GET", "DELETE"]),
    headers=headers,
    body=bodies,
)
def test_fuzz_real_server_never_5xx(
    live: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    method: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    base, db_url = live
    caplog.clear()
    clean = [
        (name, _printable(value).strip())
        for name, value in headers
        if name not in (b"content-length", b"transfer-encoding", b"host")
    ]
    with httpx.Client(base_url=base) as client:
        request = client.build_request(method, "/collect", content=body)
        for name, value in clean:
            request.headers[name.decode()] = value.decode("latin-1")
        # Every request here is well-formed HTTP (httpx frames it): each must get an answer,
        # never a connection closed without one, and never a 5xx.
        answer = client.send(request)
        assert answer.status_code < 500, answer.text
        assert_no_error_logged(caplog)
        record_id = f"live-{os.urandom(6).hex()}"
        assert client.post("/collect", json=record(record_id)).status_code == 204
    assert any(row["id"] == record_id for row in stored(db_url)[-5:])


_HEAD = b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
RAW_GARBAGE: list[tuple[bytes, int | None]] = [
    (b"\x00\x01\x02garbage\r\n\r\n", 400),
    (b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
    (b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
    (b"POST /collect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (_HEAD + b'Content-Length: 10\r\n\r\n{"v":', None),  # then hang up: nobody to answer
    (_HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    (b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    (b"POST /collect HTTP/1.0\r\nContent-Type: text/ping\r\nPing-To: x\r\n\r\nPING", 400),
    (
        b"POST /collect HTTP/1.1\r\nHost: x\r\nOrigin: http://x\r\nOrigin: null\r\n"
        b"Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
        403,
    ),
    (  # over 64 KiB in one chunk of a chunked body: 413 whatever the framing
        _HEAD + b"Transfer-Encoding: chunked\r\n\r\n10001\r\n" + b" " * 65_537 + b"\r\n0\r\n\r\n",
        413,
    ),
    (  # both framings at once (request smuggling): refused by the parser
        _HEAD + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (_HEAD + b"X-Filler: " + b"a" * 20_000 + b"\r\n\r\n", 431),
]


@pytest.mark.parametrize(("raw", "expected"), RAW_GARBAGE)
def test_raw_garbage_on_the_socket(
    live: tuple[str, str], caplog: pytest.LogCaptureFixture, raw: bytes, expected: int | None
) -> None:
    """Each gets the answer it should, and an empty one (the connection closed with no
    answer) only where the client hung up before its request was whole."""
    base, db_url = live
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := conn.recv(4096):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    status = int(answer.split(b" ", 2)[1]) if answer else None
    assert status == expected, answer[:200]
    assert_no_error_logged(caplog)
    record_id = f"raw-{os.urandom(6).hex()}"
    assert httpx.post(f"{base}/collect", json=record(record_id)).status_code == 204
    assert any(row["id"] == record_id for row in stored(db_url)[-5:])
