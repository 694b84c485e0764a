"""The receiver: a raw ASGI app that checks, dedups and stores records.

The collect path is plain ASGI (no framework) because every request is tiny and the cost per
request is the whole story; only the optional static site goes through Starlette. An answer
of 204 is sent once the record is committed (group commit, see `writer.py`). The uvicorn
runner is in `server.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from sitebeacon.collect.answers import CLOSE, EMPTY_BODY, JSON, answer, header_text, remember
from sitebeacon.collect.client_class import ClientClassifier
from sitebeacon.collect.limits import MAX_BUFFERED, RETRY_AFTER
from sitebeacon.collect.origins import OriginPolicy
from sitebeacon.collect.records import (
    BodyError,
    Parsed,
    is_bot,
    media_type,
    parse_body,
    ping_row,
)
from sitebeacon.collect.stores import Store, StoreError
from sitebeacon.collect.types import ASGIApp, Headers, Meta, Receive, Scope, Send
from sitebeacon.collect.visitors import Visitors
from sitebeacon.collect.writer import GroupCommitWriter
from sitebeacon.errors import SitebeaconError
from sitebeacon.protocol import CONTENT_TYPES, MAX_BODY, PING_TYPE

log = logging.getLogger("sitebeacon.receiver")
_new_meta = tuple.__new__
"""Builds a Meta without NamedTuple's Python-level __new__/_replace (records.py does the same)."""


class _Overbooked(Exception):
    """Bodies in parts already hold MAX_BUFFERED bytes: this one must wait its turn (503)."""


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


class _Profile:
    """What a request's Content-Type, User-Agent and Sec-Fetch-Mode say, decoded once; `meta`
    is rebuilt only when the clock has moved on (at most once a millisecond)."""

    __slots__ = ("kind", "meta")

    def __init__(
        self,
        content_type: bytes | None,
        agent: bytes | None,
        fetch_mode: bytes | None,
        classify: ClientClassifier | None = None,
    ) -> None:
        content_text = header_text(content_type, 128) if content_type is not None else None
        self.kind = media_type(content_text)
        agent_text = header_text(agent, 512) if agent is not None else None
        bot = is_bot(agent_text) if agent_text is not None else True
        browser, os, device = classify(agent_text, bot) if classify else (None, None, None)
        self.meta = Meta(
            "",
            content_text,
            header_text(fetch_mode, 32) if fetch_mode is not None else None,
            bot,
            None,
            browser,
            os,
            device,
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
        visitors: bool = True,
        trusted_proxies: Iterable[str] = (),
        client_class: bool = True,
        mounts: Mapping[str, ASGIApp] | None = None,
    ) -> None:
        self.store = store
        # Computed once per request (visitor) or once per User-Agent (client class): the only
        # two additions to the collect path for the reports (docs in visitors.py, client_class.py).
        self.visitors = Visitors(store, trusted_proxies) if visitors else None
        self.classify = ClientClassifier() if client_class else None
        # Other ASGI apps by path prefix (the CLI mounts report's dashboard here, so collect
        # never imports report).
        self.mounts = dict(mounts or {})
        self.path = path
        self.writer = GroupCommitWriter(store)
        self.origins = OriginPolicy(allow_origins)
        self.clock = _Clock()
        self._buffered = 0  # bytes of bodies in parts held by requests still reading theirs
        # Few distinct (Content-Type, User-Agent, Sec-Fetch-Mode) reach a receiver: each is
        # decoded once (a bounded cache, see `remember`).
        self._profiles: dict[tuple[bytes | None, bytes | None, bytes | None], _Profile] = {}
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
                await self.origins.not_post(scope["method"], headers, send)
                return
            origin = headers.get(b"origin")
            cors: Headers = ()
            if origin is not None:
                allowed, cors = self.origins.check(origin, headers.get(b"host"))
                if not allowed:
                    await self.origins.refuse(send)
                    return
            key = (
                headers.get(b"content-type"),
                headers.get(b"user-agent"),
                headers.get(b"sec-fetch-mode"),
            )
            profile = self._profiles.get(key)
            if profile is None:
                profile = _Profile(*key, self.classify)
                remember(self._profiles, key, profile)
            kind = profile.kind
            if kind not in CONTENT_TYPES:
                await answer(send, 415, b"unsupported Content-Type", cors)
                return
            length = headers.get(b"content-length")
            if length is not None and (
                len(length) > 9 or not length.isdigit() or int(length) > MAX_BODY
            ):
                if length.isdigit():
                    await answer(send, 413, b"body over 64 KiB", [*cors, CLOSE])
                else:
                    await answer(send, 400, b"bad Content-Length", cors)
                return
            # The body deadline is the server's (`server.py`): a body late by then ends here
            # as a disconnect.
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body: bytes = message.get("body", b"")
            if message.get("more_body", False):
                try:
                    rest = await self._read_rest(receive, body)
                except _Overbooked:
                    await answer(
                        send, 503, b"too many bodies in progress", [*cors, RETRY_AFTER, CLOSE]
                    )
                    return
                if rest is None:
                    return
                body = rest
            if len(body) > MAX_BODY:  # whatever the framing: Content-Length, chunked, parts
                await answer(send, 413, b"body over 64 KiB", [*cors, CLOSE])
                return

            now = self.clock.now()
            meta = profile.meta
            if meta.received_at is not now:  # the clock hands out one string per millisecond
                meta = profile.meta = meta._replace(received_at=now)
            if self.visitors is not None:
                visitor = self.visitors(scope, headers)
                meta = _new_meta(Meta, (meta[0], meta[1], meta[2], meta[3], visitor, *meta[5:]))
            try:
                if kind == PING_TYPE:
                    parsed = self._ping(headers, origin, meta)
                else:
                    parsed = parse_body(kind, body, meta)
            except BodyError as error:
                await answer(send, error.status, error.reason.encode(), cors)
                return

            if parsed.rows:
                try:
                    await self.writer.submit(parsed.rows)
                except StoreError:
                    await answer(
                        send,
                        503,
                        b"storage unavailable, retry later",
                        [*cors, RETRY_AFTER],
                    )
                    return
            if parsed.rejected:
                extra = [*cors, JSON] if parsed.batch else cors
                await answer(send, 400, parsed.rejection_json(), extra)
                return
            await send({"type": "http.response.start", "status": 204, "headers": cors})
            await send(EMPTY_BODY)
        except Exception:  # a bug of ours must not become a 5xx for a client's request
            log.exception("unexpected error on %s", self.path)
            with contextlib.suppress(Exception):  # fails only if the answer had begun
                await answer(send, 400, b"request not understood")

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Everything but the collect path: the site (if served), lifespan, websockets."""
        kind = scope["type"]
        if kind == "http":
            for prefix, mounted in self.mounts.items():
                if scope["path"] == prefix or scope["path"].startswith(prefix + "/"):
                    await mounted(scope, receive, send)
                    return
            if self.static is not None:
                await self.static(scope, receive, send)
            else:
                await answer(send, 404, b"not found")
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    def close(self) -> None:
        """Stop accepting rows and commit every row already accepted (idempotent); close the
        mounted apps that have a `close` (the dashboard's worker process)."""
        self.writer.close()
        for mounted in self.mounts.values():
            close = getattr(mounted, "close", None)
            if close is not None:
                close()

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

    @staticmethod
    def _ping(headers: dict[bytes, bytes], origin: bytes | None, meta: Meta) -> Parsed:
        """An `<a ping>`: its record is in the headers, not the body."""
        # An https page pinging another origin sends no Ping-From (HTML spec): the Referer,
        # else the Origin, still says which site the click was on.
        ping_from = headers.get(b"ping-from") or headers.get(b"referer") or origin
        ping_to = headers.get(b"ping-to")
        row = ping_row(
            header_text(ping_from, 4096) if ping_from is not None else None,
            header_text(ping_to, 4096) if ping_to is not None else None,
            meta,
        )
        return Parsed([row], [], False)

    async def _read_rest(self, receive: Receive, first: bytes) -> bytes | None:
        """The rest of a body sent in parts; never more than MAX_BODY + one part in memory,
        nor more than MAX_BUFFERED across all the requests reading theirs at once."""
        chunks = [first]
        size = len(first)
        held = 0
        try:
            while size <= MAX_BODY:
                if self._buffered + size - held > MAX_BUFFERED:
                    raise _Overbooked
                self._buffered += size - held
                held = size
                message = await receive()
                if message["type"] != "http.request":
                    return None
                chunk = message.get("body", b"")
                chunks.append(chunk)
                size += len(chunk)
                if not message.get("more_body", False):
                    break
        finally:
            self._buffered -= held
        return b"".join(chunks)


create_app = Receiver
"""The receiver as an ASGI app (`sitebeacon.receiver:create_app` for uvicorn and other
servers); with `site_dir`, it also serves that site (same origin)."""
