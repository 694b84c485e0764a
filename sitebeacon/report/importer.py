"""`sitebeacon import`: JSON lines exactly as `export` writes them, back into a store.

It is also the migration path between stores (`export` from SQLite, `import` into
PostgreSQL). Every stored field comes back as it was, `received_at` included; ids dedupe as on
the wire (a repeated id adds no row, a higher `seq` replaces the figures). Lines written before
the visitor and client-class columns existed import with those fields empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from sitebeacon.collect.stores import Store, iso_utc, open_store
from sitebeacon.collect.types import Row
from sitebeacon.protocol import ID_PATTERN, TYPE_PATTERN

BATCH = 5000
"""Rows per transaction: large enough that commits cost little, small enough to stream."""

_ID = re.compile(ID_PATTERN)
_TYPE = re.compile(TYPE_PATTERN)
_CANONICAL = re.compile(r"\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-6]\d\.\d{3}Z")
_TEXT = ("url", "referrer", "target", "transport", "content_type", "fetch_mode")
_CLASS = ("visitor", "browser", "os", "device")


class ImportResult(NamedTuple):
    imported: int
    bad: list[tuple[int, str]]
    """(line number, reason) for each line left out."""
    days: tuple[str, ...] = ()
    """The UTC days the imported records fell on."""


class LineError(ValueError):
    """A line that is not a record as `export` writes it."""


def _text(record: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = record.get(name)
    if value is None:
        if required:
            raise LineError(f"{name} missing")
        return None
    if type(value) is not str or "\x00" in value:
        raise LineError(f"{name} is not a string")
    return value


def _integer(record: dict[str, Any], name: str, default: int | None) -> int | None:
    value = record.get(name, default)
    if value is None:
        return None
    if type(value) is not int or not -(2**63) < value < 2**63:
        raise LineError(f"{name} is not a 64-bit integer")
    return value


def line_row(line: bytes) -> Row:
    """One exported line as the row it was; raise LineError with a short reason."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise LineError(f"not JSON ({str(error)[:60]})") from None
    if type(record) is not dict:
        raise LineError("not a JSON object")
    record_id = record.get("id")
    if type(record_id) is not str or not _ID.fullmatch(record_id):
        raise LineError("id missing or not 1-64 chars of A-Za-z0-9_-")
    kind = record.get("type")
    if type(kind) is not str or not _TYPE.fullmatch(kind):
        raise LineError(f"type missing or not {TYPE_PATTERN}")
    received = record.get("received_at")
    if type(received) is not str:
        raise LineError("received_at missing")
    if not _CANONICAL.fullmatch(received):  # as export writes it: kept as it is
        try:
            moment = datetime.fromisoformat(received.replace("Z", "+00:00"))
        except ValueError:
            raise LineError(f"received_at {received[:40]!r} is not an ISO time") from None
        if moment.tzinfo is None:
            raise LineError("received_at has no time zone")
        received = iso_utc(moment)
    data = record.get("data")
    if data is not None and type(data) is not dict:
        raise LineError("data is not an object")
    bot = record.get("bot", False)
    if type(bot) is not bool:
        raise LineError("bot is not true or false")
    texts = {name: _text(record, name, required=name == "url") for name in _TEXT + _CLASS}
    url = texts["url"]
    assert url is not None
    return Row(
        id=record_id,
        received_at=received,
        type=kind,
        url=url,
        referrer=texts["referrer"],
        target=texts["target"],
        transport=texts["transport"],
        content_type=texts["content_type"],
        fetch_mode=texts["fetch_mode"],
        seq=_integer(record, "seq", 0) or 0,
        ts=_integer(record, "ts", None),
        data=orjson.dumps(data).decode() if data is not None else None,
        bot=bot,
        visitor=texts["visitor"],
        browser=texts["browser"],
        os=texts["os"],
        device=texts["device"],
    )


def import_lines(store: Store, lines: Iterable[bytes]) -> ImportResult:
    """Store every good line (in batches), and say which lines were bad and why."""
    bad: list[tuple[int, str]] = []
    batch: list[Row] = []
    imported = 0
    days: set[str] = set()
    for number, line in _numbered(lines):
        try:
            batch.append(line_row(line))
        except LineError as error:
            bad.append((number, str(error)))
            continue
        if len(batch) >= BATCH:
            days.update(row.received_at[:10] for row in batch)
            store.add_bulk(batch)
            imported += len(batch)
            batch = []
    if batch:
        days.update(row.received_at[:10] for row in batch)
        store.add_bulk(batch)
        imported += len(batch)
    if days:  # the report's stored summaries of those days no longer hold
        store.drop_summaries(sorted(days))
    return ImportResult(imported, bad, tuple(sorted(days)))


def _numbered(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(lines, 1):
        if line.strip():
            yield number, line


def import_file(db_url: str, lines: Iterable[bytes]) -> ImportResult:
    """Import, then sum up the finished days it wrote into for the report (report/summary.py),
    so the first report after an import merges instead of reading every row."""
    from sitebeacon.report.summary import finished, summaries

    store = open_store(db_url)
    try:
        result = import_lines(store, lines)
        if result.days:  # whole months, so their rollups are made too
            day = date.fromisoformat(result.days[0]).replace(day=1)
            last = date.fromisoformat(result.days[-1])
            days = []
            while finished(day) and (day <= last or day.day != 1):
                days.append(day)
                day += timedelta(days=1)
            summaries(store, days)
        return result
    finally:
        store.close()
