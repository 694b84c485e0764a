"""The wire format's names and limits, in one place (docs/protocol.md is their prose).

Both sides read these: the template context hands them to the client module (so the JS clips
and checks with the same numbers) and the receiver validates against them. A limit changed
here changes on both sides at once.
"""

from __future__ import annotations

VERSION = 1
"""The record format's `v`."""

MAX_BODY = 65_536
"""Bytes of one request body; also what sendBeacon, keepalive fetch and fetchLater accept."""
MAX_BATCH = 100
"""Records in one JSON array body."""
MAX_TEXT = 2048
"""Characters of `url`, `ref` and `target`: the client clips, the receiver refuses longer."""
MAX_DATA = 16_384
"""Bytes of a record's `data` as compact UTF-8 JSON."""

TYPE_PATTERN = r"[a-z][a-z0-9_.:-]{0,31}"
"""A record type: the built-in ones and every custom event name."""
ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
"""A record id, made by the client (time first, then random)."""

PAGEVIEW = "pageview"
LEAVE = "leave"
OUTBOUND = "outbound"
CUSTOM = "custom"
DOWNLOAD = "download"
EVENTS = (PAGEVIEW, LEAVE, OUTBOUND, CUSTOM, DOWNLOAD)
"""What the client can be configured to send (`custom` sends types named by the page)."""

CLIENT_TRANSPORTS = ("fetchlater", "beacon", "keepalive")
"""What the client module can send with, in the default preference order."""
PING = "ping"
"""`<a ping>`: added by `inject` at build time, sent by the browser itself."""
WIRE_TRANSPORTS = frozenset((*CLIENT_TRANSPORTS, PING))
"""What a stored record's `transport` may say."""

DEFAULT_KEEP_QUERY = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "ref")
"""The query parameters a page's URL keeps by default (`[privacy] keep_query`)."""
VERIFY_PARAM = "sitebeacon-verify"
"""The query parameter `sitebeacon verify` marks each scenario's page with (`?sitebeacon-verify=
<run>-<scenario>`), to tell the stored records of its scenarios apart."""
PING_KEEP_QUERY = (*DEFAULT_KEEP_QUERY, VERIFY_PARAM)
"""What the receiver keeps of the query of an `<a ping>`'s `Ping-From` and `Ping-To`, the URLs
the browser makes and the client module cannot clean: the default list (the receiver does not
know a site's own) and verify's mark."""

ENCODINGS = ("text", "json", "form")
"""How the client encodes a body: JSON as text/plain, JSON as application/json, a form."""

TEXT_TYPE = "text/plain"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
PING_TYPE = "text/ping"
JSON_TYPES = frozenset((TEXT_TYPE, JSON_TYPE))
"""Media types whose body is the JSON record (or a JSON array of records)."""
CONTENT_TYPES = JSON_TYPES | {FORM_TYPE, PING_TYPE}
"""Every media type the receiver accepts (anything else: 415)."""

QUEUE_KEY = "sitebeacon_queue"
"""The localStorage key where the client keeps records every transport refused."""
QUEUE_RECORDS = 20
"""Records the client queue holds at most; more are dropped and counted."""
QUEUE_BYTES = 32_768
"""Bytes (32 KiB, UTF-8) of the client queue's JSON at most; more are dropped and counted."""
QUEUE_MAX_AGE_MS = 86_400_000
"""A queued record older than this (24 h, by its `ts`) is not sent."""
QUEUE_BODY = 60_000
"""Bytes of the body that carries the queue: QUEUE_BYTES plus each record's retried mark."""
RETRIED = "retried"
"""`data.retried = 1`: the record waited in the client queue and was sent on a later load."""
DROPPED = "dropped"
"""`data.dropped = N`: N records did not fit the client queue and were lost."""
MARKS_ALLOWANCE = 32
"""Bytes a record's `data` may exceed MAX_DATA by when it carries the queue's marks (`retried`,
`dropped`): the client checks a custom event's data against MAX_DATA before it is queued, and
the marks added on the way must not make the receiver refuse what the client accepted."""
IGNORE_FLAG = "sitebeacon_ignore"
"""`localStorage.sitebeacon_ignore = "1"`: this browser sends nothing (the site's owner)."""
