"""Which origins may send records, and the CORS headers and preflights that say so.

Like Starlette's `CORSMiddleware`, everything that can be decided once (the allowed origins)
is decided in `__init__`; each (Origin, Host) pair is then judged once and remembered in a
bounded cache, so the request path only looks the verdict up.
"""

from __future__ import annotations

from collections.abc import Iterable

from sitebeacon.collect.answers import answer, header_text, remember
from sitebeacon.collect.types import Headers, Send

ALLOW = (b"allow", b"POST, OPTIONS")
VARY = (b"vary", b"Origin")
PREFLIGHT = (
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-allow-headers", b"Content-Type"),
    (b"access-control-max-age", b"600"),
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _host_port(authority: str, scheme: str) -> str:
    """`Example.com:443` with scheme https -> `example.com` (browsers omit default ports)."""
    authority = authority.strip().lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default and authority.endswith(":" + default):
        authority = authority[: -len(default) - 1]
    return authority


class OriginPolicy:
    """Same-origin requests, requests without `Origin`, and the `--allow-origin` list pass;
    `*` allows every origin but `null`."""

    def __init__(self, allow_origins: Iterable[str] = ()) -> None:
        origins = {origin.strip().rstrip("/").lower() for origin in allow_origins}
        self.allow_any = "*" in origins
        self.allowed = frozenset(origins - {"*"})
        self._verdicts: dict[tuple[bytes, bytes | None], tuple[bool, Headers]] = {}

    def check(self, origin: bytes, host: bytes | None) -> tuple[bool, Headers]:
        """(allowed?, headers to add to the answer), judged once per (Origin, Host)."""
        key = (origin, host)
        verdict = self._verdicts.get(key)
        if verdict is None:
            allowed, headers = self._judge(origin, host)
            verdict = (allowed, tuple(headers))  # shared by many answers: immutable
            remember(self._verdicts, key, verdict)
        return verdict

    def _judge(self, origin: bytes, host: bytes | None) -> tuple[bool, Headers]:
        text = header_text(origin, 300).strip().lower()
        if text in self.allowed or (self.allow_any and text != "null"):
            return True, [
                (b"access-control-allow-origin", origin),
                (b"access-control-allow-credentials", b"true"),
                VARY,
            ]
        if text == "null" or host is None:
            return False, []
        scheme, sep, authority = text.partition("://")
        if not sep or "/" in authority:
            return False, []
        same = _host_port(authority, scheme) == _host_port(header_text(host, 300), scheme)
        return same, []

    async def refuse(self, send: Send) -> None:
        """The answer to an origin that is not allowed."""
        await answer(send, 403, b"origin not allowed", [VARY])

    async def not_post(self, method: str, headers: dict[bytes, bytes], send: Send) -> None:
        """A preflight (OPTIONS) for an allowed origin, or 405."""
        if method != "OPTIONS":
            await answer(send, 405, b"use POST", [ALLOW])
            return
        origin = headers.get(b"origin")
        if origin is None:
            await answer(send, 204, b"", [ALLOW])
            return
        allowed, cors = self.check(origin, headers.get(b"host"))
        if not allowed:
            await self.refuse(send)
            return
        await answer(send, 204, b"", [*cors, *PREFLIGHT, ALLOW] if cors else [ALLOW])
