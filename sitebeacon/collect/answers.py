"""Small pieces every answer of the collect side is made of: header constants, `answer()`,
header text decoding and a bounded cache. Shared by the app and the origin policy."""

from __future__ import annotations

from typing import Any

from sitebeacon.collect.types import Headers, Send

TEXT = (b"content-type", b"text/plain; charset=utf-8")
JSON = (b"content-type", b"application/json")
CLOSE = (b"connection", b"close")
EMPTY_BODY = {"type": "http.response.body", "body": b""}


def header_text(value: bytes, limit: int) -> str:
    """A header value as text: UTF-8 when it is, else Latin-1; never NUL, never unbounded."""
    try:
        text = value[:limit].decode("utf-8")
    except UnicodeDecodeError:
        text = value[:limit].decode("latin-1")
    return text.replace("\x00", "")


def remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    """A bounded cache: cleared when full, so hostile clients cannot grow it without end."""
    if len(cache) >= 256:
        cache.clear()
    cache[key] = value


async def answer(send: Send, status: int, body: bytes = b"", headers: Headers = ()) -> None:
    """Any answer but the plain 204; a body is a short reason in text unless a type is given."""
    extra = list(headers)
    if body and not any(name == b"content-type" for name, _ in extra):
        extra.append(TEXT)
    await send({"type": "http.response.start", "status": status, "headers": extra})
    await send({"type": "http.response.body", "body": body})
