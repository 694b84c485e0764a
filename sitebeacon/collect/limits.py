"""What keeps a receiver on the open internet alive: deadlines and bounds on what clients hold.

A client that connects and stalls holds a file descriptor, a protocol object and up to a body
of memory for as long as it likes, unless something cuts it off. Three layers do:

- the header and body deadlines and the header size bound, in
  `server.GuardedHttpToolsProtocol`, because uvicorn has none of them, before the app runs
  only the server sees the bytes, and there they cost no timer per request;
- the connection limit (uvicorn's `limit_concurrency`), answered 503 with Retry-After;
- the bound on buffered body bytes and the body size whatever the framing, in the app
  (`app.py`), which any ASGI server runs.

uvicorn's own settings cover the rest: `timeout_keep_alive` closes idle kept-alive
connections, and its flow control pauses reading a body the app has not asked for.
This module holds the numbers and the pieces that need no server, so the app can import it.
"""

from __future__ import annotations

import resource

from sitebeacon.collect.types import Receive, Scope, Send

HEADER_DEADLINE = 10.0
"""Seconds from connecting (or from the end of the previous answer) to a complete header."""
BODY_DEADLINE = 10.0
"""Seconds from a complete header to a complete body; later: 408 and the connection closed."""
SWEEP_EVERY = 1.0
"""Seconds between two checks of every connection against its deadline."""
MAX_HEADER_BYTES = 16_384
"""Bytes of a request line and headers together (uvicorn's h11 default; httptools has none)."""
MAX_BUFFERED = 16 * 1024 * 1024
"""Bytes of bodies that arrived in parts, held across all requests at once (256 full bodies)."""
MAX_CONNECTIONS = 10_000
"""Connections and requests at once by default (`--max-connections`); beyond it: 503."""
MAX_WAITING_ROWS = 10_000
"""Records accepted but not yet committed (a slow or absent database); beyond it: 503."""
CLOSE_WAIT = 15.0
"""Seconds a shutdown waits for the writer thread to finish with the database."""
RETRY_AFTER = (b"retry-after", b"5")
"""What every 503 tells the client: try again in a few seconds."""
FD_RESERVE = 64
"""File descriptors kept for the database, the log and the listening socket."""


def raw_answer(status: int, reason: str, text: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for the server to write itself."""
    body = text.encode()
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
    head += f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    return head.encode() + body


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard one (each connection holds one);
    returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_limit(requested: int | None) -> int:
    """The connection limit: as asked, else the default, never above what the fds allow."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_CONNECTIONS if requested is None else requested
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


async def busy(scope: Scope, receive: Receive, send: Send) -> None:
    """The answer beyond the connection limit: uvicorn's 503, plus when to retry."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), RETRY_AFTER],
        }
    )
    await send({"type": "http.response.body", "body": b"too many connections, retry later"})


async def header_too_large(scope: Scope, receive: Receive, send: Send) -> None:
    """A header over MAX_HEADER_BYTES that arrived whole at once (else the server cuts it off)."""
    await send(
        {
            "type": "http.response.start",
            "status": 431,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": b"header over 16 KiB"})
