"""Turn a request body into validated rows: pure functions, no I/O, so they are easy to fuzz.

Everything a client can send is checked here against `docs/protocol.md`; whatever passes is
safe for either store (no NUL characters or lone surrogates in text, integers that fit in 64
bits, finite numbers only), so a write never fails because of what a client sent.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import orjson

from sitebeacon.collect.types import Meta, Row
from sitebeacon.protocol import (
    DROPPED,
    FORM_TYPE,
    ID_PATTERN,
    MARKS_ALLOWANCE,
    MAX_BATCH,
    MAX_DATA,
    MAX_TEXT,
    PING_KEEP_QUERY,
    RETRIED,
    TYPE_PATTERN,
    WIRE_TRANSPORTS,
)

INT64_MAX = 2**63 - 1

_ID = re.compile(ID_PATTERN)
_TYPE = re.compile(TYPE_PATTERN)
_BAD_CHAR = re.compile(r"[\x00\ud800-\udfff]")
_DECIMAL = re.compile(r"-?[0-9]{1,19}")
_BOT_WORDS = (
    "bot",
    "crawl",
    "spider",
    "slurp",
    "headless",
    "phantomjs",
    "lighthouse",
    "curl",
    "wget",
    "python",
    "httpx",
    "aiohttp",
    "go-http-client",
    "java/",
    "okhttp",
    "libwww",
    "node-fetch",
    "axios",
    "scrapy",
    "facebookexternalhit",
    "preview",
    "monitor",
    "pingdom",
    "uptime",
    # Link-preview and feed fetchers that crawlerdetect caught and the words above did not
    # (bench/bots.py); crawlerdetect itself costs ~1 ms a new User-Agent, too much here.
    "fetcher",
    "feedly",
    "whatsapp/",
    "mastodon/",
)
_bot_cache: dict[str, bool] = {}
_new_tuple = tuple.__new__
"""A NamedTuple's own __new__ is a Python function; this builds the same tuple without it."""


class BodyError(ValueError):
    """The body as a whole is unusable: the answer is `status` with `reason` as its text."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Parsed(NamedTuple):
    """A body's outcome: the rows to store, and (index, reason) for each record refused."""

    rows: list[Row]
    rejected: list[tuple[int, str]]
    batch: bool

    def rejection_json(self) -> bytes:
        """The 400 body for a batch (protocol.md: mixed batch), or the one reason for a record."""
        if not self.batch:
            return self.rejected[0][1].encode()
        rejected = [{"index": index, "reason": reason} for index, reason in self.rejected]
        return json.dumps({"stored": len(self.rows), "rejected": rejected}).encode()


def is_bot(user_agent: str | None) -> bool:
    """Browsers always send a User-Agent, so a missing one counts as a bot too.

    A site sees few distinct User-Agents, so answers are cached (bounded: cleared when full).
    """
    if not user_agent:
        return True
    verdict = _bot_cache.get(user_agent)
    if verdict is None:
        lowered = user_agent.lower()
        verdict = any(word in lowered for word in _BOT_WORDS)
        if len(_bot_cache) >= 4096:
            _bot_cache.clear()
        _bot_cache[user_agent] = verdict
    return verdict


def media_type(content_type: str | None) -> str:
    """`text/plain;charset=UTF-8` -> `text/plain`."""
    if not content_type:
        return ""
    return content_type.partition(";")[0].strip().lower()


def parse_body(kind: str, body: bytes, meta: Meta) -> Parsed:
    """Decode a JSON or form body (`kind` is its media type) and check every record in it."""
    if kind == FORM_TYPE:
        return _check([_form_record(body)], meta, batch=False)
    value = _load_json(body)
    if type(value) is dict:  # the common case, kept short
        try:
            row = check_record(value, meta)
        except BodyError as error:
            return Parsed([], [(0, error.reason)], False)
        parsed: Parsed = _new_tuple(Parsed, ([row], [], False))
        return parsed
    if isinstance(value, list):
        if not value:
            raise BodyError("empty batch")
        if len(value) > MAX_BATCH:
            raise BodyError(f"batch of {len(value)} records; at most {MAX_BATCH}")
        return _check(value, meta, batch=True)
    return _check([value], meta, batch=False)


def private_url(url: str) -> str:
    """`url` without its fragment and without the query parameters not in PING_KEEP_QUERY, as
    the client module cleans the URLs it sends ([privacy] keep_query). For `Ping-From`, which
    the browser makes from the page's full address: a page at `/app/?email=...#access_token=...`
    must not store either through a ping. `Ping-To` too, as the module cleans a link's target (a
    share link made from the page's address carries its secrets). The receiver does not know a
    site's own list, so it keeps the default one (and verify's mark); the parameters it keeps
    are kept byte for byte."""
    url, _, _ = url.partition("#")
    base, question, query = url.partition("?")
    if not question:
        return url
    kept = [part for part in query.split("&") if part.partition("=")[0] in PING_KEEP_QUERY]
    return f"{base}?{'&'.join(kept)}" if kept else base


def ping_row(ping_from: str | None, ping_to: str | None, meta: Meta) -> Row:
    """An `<a ping>` becomes an outbound record with a server-made id (protocol.md)."""
    if not ping_to:
        raise BodyError("ping without Ping-To")
    if not ping_from:
        raise BodyError("ping without Ping-From")
    for name, value in (("Ping-From", ping_from), ("Ping-To", ping_to)):
        if len(value) > MAX_TEXT:
            raise BodyError(f"{name} over {MAX_TEXT} characters")
        if _BAD_CHAR.search(value):
            raise BodyError(f"{name} holds a NUL character")
    return Row(
        id=secrets.token_urlsafe(16),
        received_at=meta.received_at,
        type="outbound",
        url=private_url(ping_from),
        referrer=None,
        target=private_url(ping_to),
        transport="ping",
        content_type=meta.content_type,
        fetch_mode=meta.fetch_mode,
        seq=0,
        ts=None,
        data=None,
        bot=meta.bot,
        visitor=meta.visitor,
        browser=meta.browser,
        os=meta.os,
        device=meta.device,
    )


def _check(records: list[Any], meta: Meta, *, batch: bool) -> Parsed:
    rows: list[Row] = []
    rejected: list[tuple[int, str]] = []
    for index, record in enumerate(records):
        try:
            rows.append(check_record(record, meta))
        except BodyError as error:
            rejected.append((index, error.reason))
    return Parsed(rows, rejected, batch)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


# Built once: json.loads/dumps with options would build a new decoder/encoder for every call.
_decoder = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)
_encoder = json.JSONEncoder(separators=(",", ":"))


def _load_json(body: bytes) -> Any:
    """orjson first (3x faster); whatever it refuses goes through the standard library, which
    gives the reason and keeps the exact old outcome (a lone surrogate escape in one record of
    a batch, say, refuses that record rather than the whole body)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("body is not UTF-8") from None
    try:
        return _decoder.decode(text)
    except RecursionError:
        raise BodyError("JSON nested too deeply") from None
    except ValueError as error:
        raise BodyError(f"malformed JSON: {str(error)[:80]}") from None


def _form_record(body: bytes) -> dict[str, Any]:
    """A form body holds one record; numbers arrive as decimal strings, `data` as JSON."""
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=64,
        )
    except (UnicodeError, ValueError) as error:
        raise BodyError(f"malformed form: {str(error)[:80]}") from None
    record: dict[str, Any] = {}
    for name, value in pairs:
        if name in record:
            raise BodyError(f"form field {name!r} repeated"[:120])
        record[name] = value
    for name in ("v", "ts", "seq"):
        number = record.get(name)
        if number == "" and name != "v":
            del record[name]
        elif isinstance(number, str):
            if not _DECIMAL.fullmatch(number):
                raise BodyError(f"{name} is not a decimal integer")
            record[name] = int(number)
    for name in ("transport", "data", "ref", "target"):
        if record.get(name) == "":
            del record[name]
    if "data" in record:
        record["data"] = _load_json(record["data"].encode("utf-8", "surrogatepass"))
    return record


def _checked_text(value: Any, name: str) -> str:
    if type(value) is not str:
        raise BodyError(f"{name} is not a string")
    if len(value) > MAX_TEXT:
        raise BodyError(f"{name} over {MAX_TEXT} characters")
    # ASCII text cannot hold a lone surrogate, so the regex only runs on the rare other text.
    if "\x00" in value or (not value.isascii() and _BAD_CHAR.search(value)):
        raise BodyError(f"{name} holds a NUL or a lone surrogate")
    return value


def _checked_integer(value: Any, name: str, low: int) -> int:
    if type(value) is not int:
        # orjson reads an integer beyond 64 bits as a float: still "out of range" to the client.
        if type(value) is float and value.is_integer() and not low <= value <= INT64_MAX:
            raise BodyError(f"{name} out of range")
        raise BodyError(f"{name} is not an integer")
    if not low <= value <= INT64_MAX:
        raise BodyError(f"{name} out of range")
    return value


def _checked_data(value: Any) -> str:
    if type(value) is not dict:
        raise BodyError("data is not an object")
    limit = MAX_DATA + MARKS_ALLOWANCE if RETRIED in value or DROPPED in value else MAX_DATA
    try:
        # Compact UTF-8, so its length is the size protocol.md limits. orjson refuses lone
        # surrogates (only the stdlib decoder lets them through) and deep nesting: those take
        # the path below, which keeps them as escapes.
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError:
        pass
    else:
        if len(encoded) > limit:
            raise BodyError(f"data over {MAX_DATA} bytes")
        return encoded.decode()
    try:
        # ensure_ascii keeps lone surrogates and NULs as escapes: any store takes the text.
        text = _encoder.encode(value)
        size = len(text)
        if size > limit:  # escapes inflate non-ASCII text: count its UTF-8 bytes instead
            exact = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            size = len(exact.encode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):
        raise BodyError("data cannot be serialised") from None
    if size > limit:
        raise BodyError(f"data over {MAX_DATA} bytes")
    return text


def _plain_text(value: Any) -> bool:
    """The common case of a text field, in one test: short ASCII without NUL."""
    return type(value) is str and len(value) <= MAX_TEXT and value.isascii() and "\x00" not in value


_known_types: set[str] = set()
"""Record types already seen valid: few per site, so the regex runs once per type."""


def check_record(record: Any, meta: Meta) -> Row:
    """Validate one decoded record against protocol.md; raise BodyError with a short reason.

    Runs for every record on the request path, hence the flat code and local lookups: each
    field is tested for its common form first, and only a field failing that gets the
    step-by-step checks that say what is wrong.
    """
    if type(record) is not dict:
        raise BodyError("record is not a JSON object")
    get = record.get
    version = get("v")
    if version != 1 or type(version) is not int:
        raise BodyError("v missing" if version is None else "v is not 1")
    record_id = get("id")
    if type(record_id) is not str or not _ID.fullmatch(record_id):
        raise BodyError("id missing or not 1-64 chars of A-Za-z0-9_-")
    kind = get("type")
    if type(kind) is not str or kind not in _known_types:
        if type(kind) is not str or not _TYPE.fullmatch(kind):
            raise BodyError(f"type missing or not {TYPE_PATTERN}")
        if len(_known_types) >= 1024:  # bounded: hostile clients can make up types
            _known_types.clear()
        _known_types.add(kind)
    url = get("url")
    if not _plain_text(url):
        if url is None:
            raise BodyError("url missing")
        url = _checked_text(url, "url")
    referrer = get("ref")
    if referrer is not None and not _plain_text(referrer):
        referrer = _checked_text(referrer, "ref")
    target = get("target")
    if target is not None and not _plain_text(target):
        target = _checked_text(target, "target")
    transport = get("transport")
    if transport is not None and (type(transport) is not str or transport not in WIRE_TRANSPORTS):
        raise BodyError("transport unknown")
    seq = get("seq")
    if seq is None:
        seq = 0
    elif type(seq) is not int or not 0 <= seq <= INT64_MAX:
        seq = _checked_integer(seq, "seq", 0)
    ts = get("ts")
    if ts is not None and (type(ts) is not int or not -INT64_MAX <= ts <= INT64_MAX):
        ts = _checked_integer(ts, "ts", -INT64_MAX)
    data = get("data")
    if data is not None:
        data = _checked_data(data)
    row: Row = _new_tuple(
        Row,
        (
            record_id,
            meta.received_at,
            kind,
            url,
            referrer,
            target,
            transport,
            meta.content_type,
            meta.fetch_mode,
            seq,
            ts,
            data,
            meta.bot,
            meta.visitor,
            meta.browser,
            meta.os,
            meta.device,
        ),
    )
    return row
