"""The collect side's types in one place: the ASGI aliases and the row a record becomes.

Everything on the collect side imports these from here (as Starlette's `types.py` does), so a
change of shape is made once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, NamedTuple

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]


class Row(NamedTuple):
    """One record as stored; a tuple so it goes to `executemany` as it is."""

    id: str
    received_at: str
    type: str
    url: str
    referrer: str | None
    target: str | None
    transport: str | None
    content_type: str | None
    fetch_mode: str | None
    seq: int
    ts: int | None
    data: str | None
    bot: bool
    visitor: str | None = None
    """Daily-salted hash (collect/visitors.py); never the address or the User-Agent itself."""
    browser: str | None = None
    """Coarse client class from the User-Agent (collect/client_class.py): `Firefox 128`."""
    os: str | None = None
    device: str | None = None
    """`desktop`, `mobile`, `tablet` or `bot`."""


class Meta(NamedTuple):
    """What the request (not the record) says: stored beside every record of the body."""

    received_at: str
    content_type: str | None
    fetch_mode: str | None
    bot: bool
    visitor: str | None = None
    browser: str | None = None
    os: str | None = None
    device: str | None = None
