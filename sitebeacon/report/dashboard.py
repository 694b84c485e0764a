"""The live dashboard: `GET /dashboard?token=T[&days=1|7|30]`, mounted by `sitebeacon receive`.

The same report as `sitebeacon report` for today, 7 or 30 days, plus the last five minutes,
re-fetched by the page every 5 s. The token is compared in constant time; a wrong or missing
one answers 404 (as if there were no dashboard) and is logged. Reports are built in a worker
thread and cached for a few seconds, so however many dashboards are open the event loop keeps
serving /collect and the database sees one report per range per few seconds. The build runs
in a worker process of its own (with its own store connection): a thread would hold the GIL
for the whole build and slow the receiver's event loop down.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from sitebeacon.collect.stores import Store, open_store
from sitebeacon.collect.types import Receive, Scope, Send
from sitebeacon.report.aggregate import Options, Period, build_report
from sitebeacon.report.html import render_html
from sitebeacon.report.workers import ignore_interrupts

log = logging.getLogger("sitebeacon.dashboard")

CACHE_SECONDS = 8.0
"""How long one built report is served again (the page polls every 5 s)."""
RANGES = {"1": 1, "7": 7, "30": 30}
RECENT_MINUTES = 5


class Dashboard:
    """An ASGI app; `store` is the receiver's (reads go through their own connections)."""

    def __init__(self, store: Store, token: str) -> None:
        if not token:
            raise ValueError("the dashboard needs a token")
        self.store = store
        self._token = token.encode()
        self._cache: dict[tuple[str, str], tuple[float, bytes]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._pool: ProcessPoolExecutor | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = (query.get("token") or [""])[0].encode()
        auth = dict(scope["headers"]).get(b"authorization", b"")
        if auth.lower().startswith(b"bearer "):
            given = auth[7:].strip()
        if not hmac.compare_digest(given, self._token):
            client = scope.get("client")
            log.warning(
                "dashboard: %s token from %s",
                "missing" if not given else "wrong",
                client[0] if client else "?",
            )
            await _answer(send, 404, b"not found", b"text/plain; charset=utf-8")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _answer(send, 405, b"method not allowed", b"text/plain; charset=utf-8")
            return
        days = (query.get("days") or ["1"])[0]
        days = days if days in RANGES else "1"
        fmt = "json" if (query.get("format") or [""])[0] == "json" else "html"
        body = await self._cached(days, fmt)
        kind = b"application/json" if fmt == "json" else b"text/html; charset=utf-8"
        await _answer(send, 200, body if scope["method"] == "GET" else b"", kind)

    async def _cached(self, days: str, fmt: str) -> bytes:
        key = (days, fmt)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one build per range at a time; the others wait for it
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
                return hit[1]
            if self._pool is None:
                # spawn: a fork of a process running uvloop and threads is not safe.
                self._pool = ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=ignore_interrupts,
                )
            loop = asyncio.get_running_loop()
            try:
                body = await loop.run_in_executor(self._pool, build_page, self.store.url, days, fmt)
            except BrokenProcessPool:
                self._pool = None
                raise
            self._cache[key] = (time.monotonic(), body)
            return body

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


_stores: dict[str, Store] = {}
"""The worker process's open store, per URL (kept between builds)."""


def build_page(url: str, days: str, fmt: str) -> bytes:
    """In the worker process: the report for today, 7 or 30 days, plus the last minutes."""
    store = _stores.get(url)
    if store is None:
        store = _stores[url] = open_store(url, create=False)
    today = datetime.now(UTC).date()
    period = Period(today - timedelta(days=RANGES[days] - 1), today)
    report = build_report(store, period, Options())
    report["recent"] = recent(store)
    if fmt == "json":
        return json.dumps(report, ensure_ascii=False).encode()
    return render_html(report, live=True, days=days).encode()


def recent(store: Store, minutes: int = RECENT_MINUTES) -> dict[str, Any]:
    """The last few minutes: records by type and the pages being read, bots left out."""
    param = "CAST(? AS timestamptz)" if store.dialect == "postgres" else "?"
    not_bot = "NOT bot" if store.dialect == "postgres" else "bot = 0"
    since = datetime.now(UTC) - timedelta(minutes=minutes)
    stamp = since.strftime("%Y-%m-%dT%H:%M:%S.") + f"{since.microsecond // 1000:03d}Z"
    where = f"received_at >= {param} AND {not_bot}"
    types = store.query(f"SELECT type, count(*) FROM records WHERE {where} GROUP BY type", [stamp])
    pages = store.query(
        f"SELECT url, count(*) FROM records WHERE {where} AND type = ? GROUP BY url"
        " ORDER BY count(*) DESC, url LIMIT 10",
        [stamp, "pageview"],
    )
    return {
        "minutes": minutes,
        "types": dict(sorted(types, key=lambda item: (-item[1], item[0]))),
        "pages": [{"url": url, "pageviews": count} for url, count in pages],
    }


async def _answer(send: Send, status: int, body: bytes, kind: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"referrer-policy", b"no-referrer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
