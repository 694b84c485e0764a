"""Unique visitors without cookies: the daily-salt design (Plausible's, among others).

visitor = first 16 hex of SHA-256(daily salt, site host, client address, User-Agent). The salt
is random per UTC day and lives in the store (shared by every receiver of a PostgreSQL
database); the store keeps today's and yesterday's only, so once a salt is deleted nobody can
recompute which address made yesterday's ids. The address and User-Agent are never stored.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from sitebeacon.collect.stores import Store, StoreError
from sitebeacon.errors import SitebeaconError

log = logging.getLogger("sitebeacon.receiver")

CACHE_SIZE = 16_384
"""Visitor ids remembered for the day (bounded: emptied when full)."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """`--trusted-proxy` values; a bad one is a one-line error naming it."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            raise SitebeaconError(
                f"--trusted-proxy {cidr!r} is not an address or CIDR network (e.g. 10.0.0.0/8)"
            ) from None
    return tuple(networks)


def site_host(headers: Mapping[bytes, bytes]) -> bytes:
    """Which site the request is about: the page's origin (Origin, else Referer), else Host."""
    for name in (b"origin", b"referer"):
        value = headers.get(name)
        if value:
            rest = value.partition(b"://")[2]
            if rest:
                return rest.partition(b"/")[0].lower()
    return (headers.get(b"host") or b"").lower()


class Visitors:
    """`visitor(scope, headers)` on the request path: one SHA-256, the salt cached per day."""

    def __init__(self, store: Store, trusted_proxies: Iterable[str] = ()) -> None:
        self.store = store
        self.trusted = parse_networks(trusted_proxies)
        self._day = -1
        self._salt = b""
        self._cache: dict[tuple[Any, ...], str] = {}
        self._retry_at = 0.0

    def salt(self) -> bytes | None:
        """Today's salt, or None while the store cannot give one (then records are stored
        without a visitor id, and the store is asked again at most every 10 s)."""
        day = int(time.time() // 86400)
        if day != self._day:
            if time.monotonic() < self._retry_at:
                return None
            try:
                self._fetch(day)
            except StoreError as error:
                log.warning("no visitor salt for today (visitor ids left out): %s", error)
                self._retry_at = time.monotonic() + 10
                return None
        return self._salt

    def _fetch(self, day: int) -> None:
        if day != self._day:
            # Once a UTC day: the store makes (or hands out another receiver's) salt for today
            # and deletes the ones before yesterday.
            self._salt = self.store.daily_salt(time.strftime("%Y-%m-%d", time.gmtime(day * 86400)))
            self._day = day
            self._cache.clear()

    def client_address(self, scope: Mapping[str, Any], headers: Mapping[bytes, bytes]) -> bytes:
        """The peer's address; behind a trusted proxy, the last X-Forwarded-For hop it did not
        add itself (the right-most address not in a trusted network). Otherwise the header is
        ignored: anyone can send it."""
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        if not self.trusted or not self._is_trusted(peer):
            return peer.encode()
        forwarded = headers.get(b"x-forwarded-for")
        if not forwarded:
            return peer.encode()
        hops = [hop.strip() for hop in forwarded.decode("latin-1").split(",")]
        for hop in reversed(hops):
            if hop and not self._is_trusted(hop):
                return hop.encode()
        return (hops[0] or peer).encode()

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def __call__(self, scope: Mapping[str, Any], headers: Mapping[bytes, bytes]) -> str | None:
        """Cached per (peer, the headers it is made of) within the day: a reader's next
        records cost a dict lookup, not a hash (the cache is emptied with each new salt)."""
        client = scope.get("client")
        get = headers.get
        key = (
            client[0] if client else None,
            get(b"origin"),
            get(b"referer"),
            get(b"host"),
            get(b"x-forwarded-for"),
            get(b"user-agent"),
        )
        day = int(time.time() // 86400)
        if day == self._day:
            found = self._cache.get(key)
            if found is not None:
                return found
        salt = self.salt()  # a new day empties the cache
        if salt is None:
            return None
        digest = hashlib.sha256(salt)
        digest.update(b"\0" + site_host(headers) + b"\0")
        digest.update(self.client_address(scope, headers) + b"\0")
        digest.update(get(b"user-agent") or b"")
        visitor = digest.hexdigest()[:16]
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = visitor
        return visitor
