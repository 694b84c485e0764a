"""Run the receiver under uvicorn: bind, serve until a signal, commit what was accepted.

The app (`app.py`) never imports the server; this module imports the app, as uvicorn imports
Starlette's. The header deadline lives here, in uvicorn's protocol (see `limits.py`).
Any ASGI server can run `create_app(...)` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sitebeacon.collect.app import create_app
from sitebeacon.collect.limits import (
    BODY_DEADLINE,
    HEADER_DEADLINE,
    MAX_HEADER_BYTES,
    SWEEP_EVERY,
    busy,
    connection_limit,
    header_too_large,
    raise_fd_limit,
    raw_answer,
)
from sitebeacon.collect.stores import open_store
from sitebeacon.collect.types import ASGIApp
from sitebeacon.errors import SitebeaconError

_TIMEOUT_408 = raw_answer(408, "Request Timeout", "request took too long\n")
_TOO_LARGE_431 = raw_answer(
    431, "Request Header Fields Too Large", f"header over {MAX_HEADER_BYTES // 1024} KiB\n"
)


def uvicorn_config(app: ASGIApp, *, max_connections: int | None = None, **overrides: Any) -> Any:
    """One uvicorn configuration for `serve`, `running_receiver` and the benchmark."""
    import uvicorn

    options: dict[str, Any] = {
        "loop": "auto",  # uvloop when installed (uvicorn[standard])
        "http": GuardedHttpToolsProtocol,  # httptools (uvicorn[standard]) with the deadlines below
        "limit_concurrency": connection_limit(max_connections),  # beyond it: 503, Retry-After
        "timeout_keep_alive": 5,  # an idle kept-alive connection is closed (uvicorn's default)
        "ws": "none",
        "lifespan": "on",
        "access_log": False,
        "log_config": None,  # leave the host process's logging alone
        "log_level": "warning",
        "server_header": False,
        "proxy_headers": False,
        "timeout_graceful_shutdown": 30,
        **overrides,
    }
    return uvicorn.Config(app, **options)


_HEADER, _BODY, _WORKING = 0, 1, 2
"""Where a connection is: reading a header, reading a body, or neither (the app answers)."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header and a body deadline, a header size bound,
    and a 503 with Retry-After beyond `limit_concurrency` (uvicorn's own 503 says nothing
    about when to retry).

    The header deadline runs from connecting, and again from the end of each answer on a
    kept-alive connection, to the end of the header; the body deadline from there to the end
    of the body. A client past either gets 408 and is closed, whether it sent half a request
    line, nothing at all, or part of a body. No timer per request: each connection notes when
    its phase began, and one sweep a second over all connections cuts off the late ones.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limit: int | None = self.limit_concurrency
        self.limit_concurrency = None  # checked here, so that the 503 can say Retry-After
        self._phase = _HEADER
        self._since = 0.0
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._since = time.monotonic()
        state = self.server_state  # one per server: its connections, and now its sweep
        if not getattr(state, "sitebeacon_sweeping", False):
            state.sitebeacon_sweeping = True  # type: ignore[attr-defined]
            self.loop.call_later(SWEEP_EVERY, _sweep, self.loop, state)

    def data_received(self, data: bytes) -> None:
        if self._phase == _HEADER:
            self._header_bytes += len(data)  # an upper bound: `data` may hold a body too
        super().data_received(data)
        if self._phase == _HEADER and self._header_bytes > MAX_HEADER_BYTES:
            self._cut_off(_TOO_LARGE_431)  # still no end of header in sight

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        self._since = time.monotonic()
        limit = self._limit
        if self._header_bytes > MAX_HEADER_BYTES and self._header_size() > MAX_HEADER_BYTES:
            instead: ASGIApp = header_too_large
        elif limit is not None and (len(self.connections) > limit or len(self.tasks) >= limit):
            instead = busy
        else:
            super().on_headers_complete()
            return
        app, self.app = self.app, instead
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._phase != _BODY:
            return
        if self.cycle.response_complete and not self.pipeline:
            self._start_header()  # answered before its body was read: the next header is due
        else:
            self._phase = _WORKING

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.pipeline and self._phase != _BODY:
            self._start_header()  # the next request's header, if one comes

    def _start_header(self) -> None:
        self._phase = _HEADER
        self._since = time.monotonic()
        self._header_bytes = 0

    def _header_size(self) -> int:
        """The header's size as parsed (the bytes counted may include a body)."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def late(self, now: float) -> bool:
        """Whether this connection is past its phase's deadline."""
        if self._phase == _WORKING or self.transport.is_closing():
            return False
        deadline = HEADER_DEADLINE if self._phase == _HEADER else BODY_DEADLINE
        return now - self._since > deadline

    def cut_off_late(self, now: float) -> None:
        """408 (unless an answer has begun) and close, if still late."""
        if not self.late(now):
            return
        cycle = self.cycle
        answering = cycle is not None and cycle.response_started and not cycle.response_complete
        # A pipelined request waits behind one still being answered: no 408 in the middle.
        self._cut_off(b"" if answering or self.pipeline else _TIMEOUT_408)

    def _cut_off(self, answer: bytes) -> None:
        self._phase = _WORKING
        if not self.transport.is_closing():
            if answer:
                self.transport.write(answer)
            self.transport.close()


CUT_OFF_PER_TURN = 200


def _sweep(loop: asyncio.AbstractEventLoop, state: Any) -> None:
    """Once a second: cut off every connection past its deadline; stop with the last one."""
    if not state.connections:
        state.sitebeacon_sweeping = False  # the next connection starts it again
        return
    now = time.monotonic()
    late = [
        connection
        for connection in state.connections
        if isinstance(connection, GuardedHttpToolsProtocol) and connection.late(now)
    ]
    _cut_off_some(loop, late)
    loop.call_later(SWEEP_EVERY, _sweep, loop, state)


def _cut_off_some(loop: asyncio.AbstractEventLoop, late: list[GuardedHttpToolsProtocol]) -> None:
    """A few hundred a loop turn: thousands cut off at once would hold up every answer."""
    now = time.monotonic()
    for connection in late[:CUT_OFF_PER_TURN]:
        connection.cut_off_late(now)
    if len(late) > CUT_OFF_PER_TURN:
        loop.call_soon(_cut_off_some, loop, late[CUT_OFF_PER_TURN:])


def _mount(store: Any, app_options: dict[str, Any]) -> None:
    """Turn `mounts_for(store) -> {prefix: app}` into `mounts` once the store is open."""
    mounts_for = app_options.pop("mounts_for", None)
    if mounts_for is not None:
        app_options["mounts"] = {**app_options.get("mounts", {}), **mounts_for(store)}


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before serving, so a busy port is a clear error and port 0 yields a known port."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # connections queue from now on, before uvicorn starts accepting
    except OSError as error:
        reason = error.strerror or error
        raise SitebeaconError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def _base_url(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_server(app: ASGIApp, sock: socket.socket, *, max_connections: int | None = None) -> None:
    """Serve `app` on `sock` in this (main) thread until SIGTERM or SIGINT, then return.

    uvicorn stops accepting, lets the requests in progress finish, runs the lifespan shutdown
    (which commits every accepted row) and then re-raises the signal it caught; the handlers
    installed here make that re-raise harmless, so the process exits 0 instead of dying.
    """
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app, max_connections=max_connections))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(
    db_url: str,
    host: str,
    port: int,
    path: str,
    allow_origins: Iterable[str],
    site_dir: Path | None,
    max_connections: int | None = None,
    **app_options: Any,
) -> None:
    """Run until SIGTERM/SIGINT; then stop accepting, commit everything accepted, and return.

    `app_options` go to `create_app` (visitors, trusted_proxies, mounts...); a callable
    `mounts_for(store)` builds mounts that need the open store (the dashboard).
    """
    logging.basicConfig(level=logging.WARNING, format="sitebeacon: %(message)s")
    raise_fd_limit()  # every connection holds a file descriptor
    store = open_store(db_url)
    try:
        _mount(store, app_options)
        app = create_app(
            store, path=path, allow_origins=allow_origins, site_dir=site_dir, **app_options
        )
        try:
            sock = bind_socket(host, port)
            base = _base_url(sock, host)
            print(
                f"sitebeacon: receiving on {base}{path}, storing in {db_url}",
                file=sys.stderr,
                flush=True,
            )
            if site_dir is not None:
                print(f"sitebeacon: serving {site_dir} at {base}/", file=sys.stderr, flush=True)
            run_server(app, sock, max_connections=max_connections)
        finally:
            app.close()
    finally:
        store.close()


@contextlib.contextmanager
def running_receiver(
    db_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = "/collect",
    allow_origins: Iterable[str] = (),
    site_dir: Path | None = None,
    max_connections: int | None = None,
    **app_options: Any,
) -> Iterator[str]:
    """A receiver on a background thread for tests and `verify`: yields `http://host:port`.

    Every request answered 204 is committed, so `open_store(db_url).records()` sees it at
    once; on exit the server stops and the store is closed.
    """
    import uvicorn

    store = open_store(db_url)
    try:
        _mount(store, app_options)
        app = create_app(
            store, path=path, allow_origins=allow_origins, site_dir=site_dir, **app_options
        )
        sock = bind_socket(host, port)
        server = uvicorn.Server(uvicorn_config(app, max_connections=max_connections))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="sitebeacon-receiver", daemon=True
        )
        thread.start()
        try:
            deadline = time.monotonic() + 15
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise SitebeaconError("the receiver did not start")
                time.sleep(0.01)
            yield _base_url(sock, host)
        finally:
            server.should_exit = True
            thread.join(timeout=40)
            app.close()
            sock.close()
    finally:
        store.close()
