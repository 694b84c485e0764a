"""The receiver: a raw ASGI app that checks, dedups and stores records, and its uvicorn runner.

The collect path is plain ASGI (no framework) because every request is tiny and the cost per
request is the whole story; only the optional static site goes through Starlette. An answer
of 204 is sent once the record is committed (group commit, see `writer.py`).
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
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from sitebeacon.errors import SitebeaconError
from sitebeacon.records import (
    CONTENT_TYPES,
    MAX_BODY,
    PING_TYPE,
    BodyError,
    Meta,
    Parsed,
    is_bot,
    media_type,
    parse_body,
    ping_row,
)
from sitebeacon.store import Store, StoreError, open_store
from sitebeacon.writer import GroupCommitWriter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]

log = logging.getLogger("sitebeacon.receiver")

ALLOW = (b"allow", b"POST, OPTIONS")
TEXT = (b"content-type", b"text/plain; charset=utf-8")
JSON = (b"content-type", b"application/json")
CLOSE = (b"connection", b"close")
EMPTY_BODY = {"type": "http.response.body", "body": b""}
PREFLIGHT = [
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-allow-headers", b"Content-Type"),
    (b"access-control-max-age", b"600"),
]
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class _Clock:
    """received_at as `2024-05-01T12:00:00.123Z`, formatted once per millisecond at most."""

    def __init__(self) -> None:
        self._millisecond = -1
        self._text = ""

    def now(self) -> str:
        millisecond = int(time.time() * 1000)
        if millisecond != self._millisecond:
            seconds, fraction = divmod(millisecond, 1000)
            self._text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            self._text += f".{fraction:03d}Z"
            self._millisecond = millisecond
        return self._text


def _text(value: bytes, limit: int) -> str:
    """A header value as text: UTF-8 when it is, else Latin-1; never NUL, never unbounded."""
    try:
        text = value[:limit].decode("utf-8")
    except UnicodeDecodeError:
        text = value[:limit].decode("latin-1")
    return text.replace("\x00", "")


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    """A bounded cache: cleared when full, so hostile clients cannot grow it without end."""
    if len(cache) >= 256:
        cache.clear()
    cache[key] = value


def _host_port(authority: str, scheme: str) -> str:
    """`Example.com:443` with scheme https -> `example.com` (browsers omit default ports)."""
    authority = authority.strip().lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default and authority.endswith(":" + default):
        authority = authority[: -len(default) - 1]
    return authority


async def _answer(send: Send, status: int, body: bytes = b"", headers: Headers = ()) -> None:
    """Any answer but the plain 204; a body is a short reason in text unless a type is given."""
    extra = list(headers)
    if body and not any(name == b"content-type" for name, _ in extra):
        extra.append(TEXT)
    await send({"type": "http.response.start", "status": status, "headers": extra})
    await send({"type": "http.response.body", "body": body})


class _Profile:
    """What a request's Content-Type, User-Agent and Sec-Fetch-Mode say, decoded once; `meta`
    is rebuilt only when the clock has moved on (at most once a millisecond)."""

    __slots__ = ("kind", "meta")

    def __init__(self, content_type: bytes | None, agent: bytes | None,
                 fetch_mode: bytes | None) -> None:
        content_text = _text(content_type, 128) if content_type is not None else None
        self.kind = media_type(content_text)
        self.meta = Meta(
            "",
            content_text,
            _text(fetch_mode, 32) if fetch_mode is not None else None,
            is_bot(_text(agent, 512)) if agent is not None else True,
        )


class Receiver:
    """The ASGI application returned by `create_app`; `close()` commits what was accepted."""

    def __init__(
        self,
        store: Store,
        *,
        path: str = "/collect",
        allow_origins: Iterable[str] = (),
        site_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.path = path
        self.writer = GroupCommitWriter(store)
        origins = {origin.strip().rstrip("/").lower() for origin in allow_origins}
        self.allow_any = "*" in origins
        self.allowed = frozenset(origins - {"*"})
        self.clock = _Clock()
        # Few distinct (Content-Type, User-Agent, Sec-Fetch-Mode) reach a receiver, and few
        # (Origin, Host): each is decoded and judged once (bounded caches, see `_remember`).
        self._profiles: dict[tuple[bytes | None, bytes | None, bytes | None], _Profile] = {}
        self._origins: dict[tuple[bytes, bytes | None], tuple[bool, Headers]] = {}
        self.static: ASGIApp | None = None
        if site_dir is not None:
            if not Path(site_dir).is_dir():
                raise SitebeaconError(f"site directory {site_dir} does not exist")
            from starlette.middleware.exceptions import ExceptionMiddleware
            from starlette.staticfiles import StaticFiles

            # StaticFiles raises HTTPException for 404/405; the middleware turns it into a page.
            self.static = ExceptionMiddleware(StaticFiles(directory=site_dir, html=True))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The collect path is the hot path: one request, usually one record. It is written
        out here, flat, rather than in a method of its own: one coroutine per request fewer."""
        if scope["type"] != "http" or scope["path"] != self.path:
            await self._other(scope, receive, send)
            return
        try:
            headers = dict(scope["headers"])  # names are lower-case in ASGI; the last one wins
            if scope["method"] != "POST":
                await self._not_post(scope["method"], headers, send)
                return
            origin = headers.get(b"origin")
            cors: Headers = ()
            if origin is not None:
                allowed, cors = self._cors(origin, headers.get(b"host"))
                if not allowed:
                    await _answer(send, 403, b"origin not allowed", [(b"vary", b"Origin")])
                    return
            key = (headers.get(b"content-type"), headers.get(b"user-agent"),
                   headers.get(b"sec-fetch-mode"))
            profile = self._profiles.get(key)
            if profile is None:
                profile = _Profile(*key)
                _remember(self._profiles, key, profile)
            kind = profile.kind
            if kind not in CONTENT_TYPES:
                await _answer(send, 415, b"unsupported Content-Type", cors)
                return
            length = headers.get(b"content-length")
            if length is not None and (len(length) > 9 or not length.isdigit()
                                       or int(length) > MAX_BODY):
                if length.isdigit():
                    await _answer(send, 413, b"body over 64 KiB", [*cors, CLOSE])
                else:
                    await _answer(send, 400, b"bad Content-Length", cors)
                return
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body: bytes = message.get("body", b"")
            if message.get("more_body", False):
                rest = await self._read_rest(receive, body)
                if rest is None:
                    return
                body = rest
                if len(body) > MAX_BODY:
                    await _answer(send, 413, b"body over 64 KiB", [*cors, CLOSE])
                    return

            now = self.clock.now()
            meta = profile.meta
            if meta.received_at is not now:  # the clock hands out one string per millisecond
                meta = profile.meta = meta._replace(received_at=now)
            try:
                if kind == PING_TYPE:
                    parsed = self._ping(headers, origin, meta)
                else:
                    parsed = parse_body(kind, body, meta)
            except BodyError as error:
                await _answer(send, error.status, error.reason.encode(), cors)
                return

            if parsed.rows:
                try:
                    await self.writer.submit(parsed.rows)
                except StoreError:
                    await _answer(send, 503, b"storage unavailable, retry later",
                                  [*cors, (b"retry-after", b"5")])
                    return
            if parsed.rejected:
                extra = [*cors, JSON] if parsed.batch else cors
                await _answer(send, 400, parsed.rejection_json(), extra)
                return
            await send({"type": "http.response.start", "status": 204, "headers": cors})
            await send(EMPTY_BODY)
        except Exception:  # a bug of ours must not become a 5xx for a client's request
            log.exception("unexpected error on %s", self.path)
            with contextlib.suppress(Exception):  # fails only if the answer had begun
                await _answer(send, 400, b"request not understood")

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Everything but the collect path: the site (if served), lifespan, websockets."""
        kind = scope["type"]
        if kind == "http":
            if self.static is not None:
                await self.static(scope, receive, send)
            else:
                await _answer(send, 404, b"not found")
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    def close(self) -> None:
        """Stop accepting rows and commit every row already accepted (idempotent)."""
        self.writer.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.writer.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.writer.close)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _cors(self, origin: bytes, host: bytes | None) -> tuple[bool, Headers]:
        """(allowed?, headers to add to the answer), judged once per (Origin, Host)."""
        key = (origin, host)
        verdict = self._origins.get(key)
        if verdict is None:
            allowed, headers = self._judge_origin(origin, host)
            verdict = (allowed, tuple(headers))  # shared by many answers: immutable
            _remember(self._origins, key, verdict)
        return verdict

    def _judge_origin(self, origin: bytes, host: bytes | None) -> tuple[bool, Headers]:
        text = _text(origin, 300).strip().lower()
        if text in self.allowed or (self.allow_any and text != "null"):
            return True, [
                (b"access-control-allow-origin", origin),
                (b"access-control-allow-credentials", b"true"),
                (b"vary", b"Origin"),
            ]
        if text == "null" or host is None:
            return False, []
        scheme, sep, authority = text.partition("://")
        if not sep or "/" in authority:
            return False, []
        same = _host_port(authority, scheme) == _host_port(_text(host, 300), scheme)
        return same, []

    @staticmethod
    def _ping(headers: dict[bytes, bytes], origin: bytes | None, meta: Meta) -> Parsed:
        """An `<a ping>`: its record is in the headers, not the body."""
        # An https page pinging another origin sends no Ping-From (HTML spec): the Referer,
        # else the Origin, still says which site the click was on.
        ping_from = headers.get(b"ping-from") or headers.get(b"referer") or origin
        ping_to = headers.get(b"ping-to")
        row = ping_row(
            _text(ping_from, 4096) if ping_from is not None else None,
            _text(ping_to, 4096) if ping_to is not None else None,
            meta,
        )
        return Parsed([row], [], False)

    async def _not_post(self, method: str, headers: dict[bytes, bytes], send: Send) -> None:
        """A preflight (OPTIONS) for an allowed origin, or 405."""
        if method != "OPTIONS":
            await _answer(send, 405, b"use POST", [ALLOW])
            return
        origin = headers.get(b"origin")
        if origin is None:
            await _answer(send, 204, b"", [ALLOW])
            return
        allowed, cors = self._cors(origin, headers.get(b"host"))
        if not allowed:
            await _answer(send, 403, b"origin not allowed", [(b"vary", b"Origin")])
            return
        await _answer(send, 204, b"", [*cors, *PREFLIGHT, ALLOW] if cors else [ALLOW])

    @staticmethod
    async def _read_rest(receive: Receive, first: bytes) -> bytes | None:
        """The rest of a body sent in parts; never more than MAX_BODY + one part in memory."""
        chunks = [first]
        size = len(first)
        while size <= MAX_BODY:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

def create_app(
    store: Store,
    *,
    path: str = "/collect",
    allow_origins: Iterable[str] = (),
    site_dir: Path | None = None,
) -> Receiver:
    """The receiver as an ASGI app; with `site_dir`, it also serves that site (same origin)."""
    return Receiver(store, path=path, allow_origins=allow_origins, site_dir=site_dir)


def uvicorn_config(app: ASGIApp, **overrides: Any) -> Any:
    """One uvicorn configuration for `serve`, `running_receiver` and the benchmark."""
    import uvicorn

    options: dict[str, Any] = {
        "loop": "auto",  # uvloop when installed (uvicorn[standard])
        "http": "auto",  # httptools when installed
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


def run_server(app: ASGIApp, sock: socket.socket) -> None:
    """Serve `app` on `sock` in this (main) thread until SIGTERM or SIGINT, then return.

    uvicorn stops accepting, lets the requests in progress finish, runs the lifespan shutdown
    (which commits every accepted row) and then re-raises the signal it caught; the handlers
    installed here make that re-raise harmless, so the process exits 0 instead of dying.
    """
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app))

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
) -> None:
    """Run until SIGTERM/SIGINT; then stop accepting, commit everything accepted, and return."""
    logging.basicConfig(level=logging.WARNING, format="sitebeacon: %(message)s")
    store = open_store(db_url)
    try:
        app = create_app(store, path=path, allow_origins=allow_origins, site_dir=site_dir)
        try:
            sock = bind_socket(host, port)
            base = _base_url(sock, host)
            print(f"sitebeacon: receiving on {base}{path}, storing in {db_url}",
                  file=sys.stderr, flush=True)
            if site_dir is not None:
                print(f"sitebeacon: serving {site_dir} at {base}/", file=sys.stderr, flush=True)
            run_server(app, sock)
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
) -> Iterator[str]:
    """A receiver on a background thread for tests and `verify`: yields `http://host:port`.

    Every request answered 204 is committed, so `open_store(db_url).records()` sees it at
    once; on exit the server stops and the store is closed.
    """
    import uvicorn

    store = open_store(db_url)
    try:
        app = create_app(store, path=path, allow_origins=allow_origins, site_dir=site_dir)
        sock = bind_socket(host, port)
        server = uvicorn.Server(uvicorn_config(app))
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
