"""Which hosts are the site's own (config `hosts`): ONE rule, used by inject's ping
classification and handed to the client module's template as `own_hosts`.

The rule: a host is reduced to a key — lower case, userinfo and a trailing dot dropped, the
ports 80 and 443 dropped (a link over http or https to the same name is still the site), and one
leading `www.` dropped (www and the apex domain are one site). An http(s) link whose host's key
equals the key of an entry of `hosts` is not outbound. Other ports must be listed as they are
(`"example.com:8080"`). The client module applies the same rule to `new URL(href).host` (which
the browser has already lower-cased, decoded and stripped of its scheme's default port).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote

DEFAULT_PORTS = ("80", "443")


def host_key(host: str) -> str:
    """The key of `host` (`host[:port]`, maybe with userinfo) under the rule above."""
    host = host.rpartition("@")[2].lower()
    name, colon, port = host.rpartition(":")
    if not colon or not port.isdigit():
        name, port = host, ""
    if port in DEFAULT_PORTS:
        port = ""
    name = name.rstrip(".")
    if name.startswith("www."):
        name = name[4:]
    return f"{name}:{port}" if port else name


def own_host_keys(hosts: Iterable[str]) -> tuple[str, ...]:
    """The keys of the configured `hosts`, sorted and distinct (what the templates get)."""
    return tuple(sorted({host_key(host) for host in hosts}))


def is_own_authority(authority: str, keys: tuple[str, ...]) -> bool:
    """Whether the authority of an http(s) URL (the part after `//` up to `/`, `?` or `#`)
    names one of the site's own hosts, `keys` being `own_host_keys(config.hosts)`."""
    if not keys:
        return False
    if "%" in authority:
        authority = unquote(authority)  # the URL parser percent-decodes the host
    return host_key(authority) in keys
