"""Exact daily summaries: one pass over a day's records, kept in the store once the day is over.

A report of 30 days merges 30 summaries instead of reading two million rows. Each summary is
split by (site host, bot) so `--site` and `--include-bots` pick parts of it, and holds counts,
not samples, plus every leave's visible time per page (sorted), so merged medians are exact.
Finished days (before yesterday, UTC) are stored; a trigger in the store deletes a day's
summary when one of its rows changes, and `import` drops the days it writes into. Whole
calendar months and Monday-Sunday weeks are also kept as rollups of their days, so a year
merges ~12 summaries; a rollup is keyed by its days' random stamps, so it is only used while
every one of those day summaries is the one it was made from.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import zlib
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from sitebeacon.collect.stores import Store, StoreError
from sitebeacon.protocol import DOWNLOAD, LEAVE, OUTBOUND, PAGEVIEW, RETRIED

log = logging.getLogger("sitebeacon.report")

VERSION = 6
"""Bumped whenever a summary's shape changes: older ones are then ignored and remade."""
VISIT_GAP_MS = 30 * 60 * 1000
"""A visit is the page views of one visitor with gaps under 30 minutes."""
BUILTIN = (PAGEVIEW, LEAVE, OUTBOUND, DOWNLOAD)
SEP = "\x1f"
"""Joins the parts of a composite key (JSON objects need string keys)."""

_TEXT_TIME = {
    "sqlite": "received_at",
    "postgres": "to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
}
_PARAM = {"sqlite": "?", "postgres": "CAST(? AS timestamptz)"}


def visible_ms(data: Any) -> float | None:
    """A leave's figure: a number (not a boolean), at least 0."""
    value = data.get("visible_ms") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return value


def is_retried(data: Any) -> bool:
    """`data.retried` (protocol.md): true, or a positive count, on a copy from the client queue."""
    value = data.get(RETRIED) if isinstance(data, dict) else None
    return value is True or (type(value) is int and value > 0)


def host_of(url: str | None) -> str:
    if not url:
        return ""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def utm_of(url: str) -> tuple[str, str, str] | None:
    """(source, medium, campaign) from the URL's kept query, or None without utm_ fields."""
    if "utm_" not in url:
        return None
    try:
        query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    except ValueError:
        return None
    source, medium, campaign = (query.get(f"utm_{k}", "") for k in ("source", "medium", "campaign"))
    return (source, medium, campaign) if source or medium or campaign else None


def _ms(stamp: str) -> int:
    """Milliseconds into the day of `YYYY-MM-DDTHH:MM:SS.mmmZ` (visits never cross days)."""
    return (
        int(stamp[11:13]) * 3_600_000
        + int(stamp[14:16]) * 60_000
        + int(stamp[17:19]) * 1000
        + int(stamp[20:23])
    )


def empty() -> dict[str, Any]:
    """A summary part with nothing counted yet (also the start of a merge)."""
    return {
        "types": Counter(),
        "mix": Counter(),
        "pages": defaultdict(lambda: [0, 0, 0, 0]),
        "visible": defaultdict(list),
        "referrers": Counter(),
        "utm": Counter(),
        "targets": Counter(),
        "events": Counter(),
        "retried": 0,
        "no_visitor": 0,
        "no_class": 0,
    }


def add_counts(into: dict[str, Any], part: dict[str, Any]) -> None:
    """Add a summary part's counts (all but its visible times) to `into`, one of `empty()`'s
    shape: a rollup and a report's merge both sum parts this way."""
    for name in ("types", "mix", "referrers", "utm", "targets", "events"):
        into[name].update(part[name])
    for url, counts in part["pages"].items():
        page = into["pages"][url]
        for index, count in enumerate(counts):
            page[index] += count
    for name in ("retried", "no_visitor", "no_class"):
        into[name] += part[name]


_PAGE_INDEX = {PAGEVIEW: 0, LEAVE: 1, OUTBOUND: 2, DOWNLOAD: 3}


def summarize(rows: Iterable[tuple[Any, ...]]) -> dict[str, Any]:
    """One day's rows -> {"parts": {"host<SEP>bot": counts}, "visits": {"host<SEP>bots": ...}}.

    Rows: (id, received_at text, type, url, referrer, target, transport, data text, bot,
    visitor, browser, os, device). Visits are made for each selection a report can ask for
    (one host or all, bots left out or not), because a visit can mix hosts or bot flags in
    data that did not come from one receiver.
    """
    parts: dict[str, dict[str, Any]] = {}
    hosts: dict[str, str] = {}
    views: list[tuple[str, str, str, str, str, str]] = []
    for rid, stamp, kind, url, referrer, target, transport, data, bot, visitor, *klass in rows:
        host = hosts.get(url)
        if host is None:
            host = hosts[url] = host_of(url)
        key = f"{host}{SEP}{int(bool(bot))}"
        part = parts.get(key)
        if part is None:
            part = parts[key] = empty()
        part["types"][kind] += 1
        browser, os, device = klass
        part["mix"][SEP.join((kind, transport or "", browser or "", os or "", device or ""))] += 1
        slot = _PAGE_INDEX.get(kind)
        if slot is not None:
            part["pages"][url][slot] += 1
        decoded = orjson.loads(data) if data is not None else None
        if kind == PAGEVIEW:
            referrer_host = hosts.get(referrer) if referrer else ""
            if referrer_host is None:
                referrer_host = hosts[referrer] = host_of(referrer)
            part["referrers"][referrer_host] += 1  # by host: all the report shows
            fields = utm_of(url)
            if fields is not None:
                part["utm"][SEP.join(fields)] += 1
            if visitor is None:
                part["no_visitor"] += 1
            else:
                views.append((visitor, stamp, rid, url, host, "1" if bot else "0"))
            if browser is None and os is None and device is None:
                part["no_class"] += 1
        elif kind == LEAVE:
            value = visible_ms(decoded)
            if value is not None:
                part["visible"][url].append(value)
        elif kind in (OUTBOUND, DOWNLOAD):
            part["targets"][SEP.join((url, kind, target or "unknown"))] += 1
        else:
            part["events"][f"{kind}{SEP}{data or ''}"] += 1
        if kind in BUILTIN and data is not None and RETRIED in data and is_retried(decoded):
            part["retried"] += 1
    for part in parts.values():
        for values in part["visible"].values():
            values.sort()
    views.sort()
    visits = {}
    for host in [*sorted({view[4] for view in views}), "*"]:
        for bots in ("0", "*"):
            chosen = [
                view
                for view in views
                if (host == "*" or view[4] == host) and (bots == "*" or view[5] == "0")
            ]
            if chosen:
                visits[f"{host}{SEP}{bots}"] = _visits(chosen)
    return {"parts": parts, "visits": visits}


def _visits(pageviews: list[tuple[str, str, str, str, str, str]]) -> dict[str, Any]:
    """Visits, bounces, entry pages and distinct visitors (overall and per page); sorted input."""
    part: dict[str, Any] = {"visits": defaultdict(lambda: [0, 0])}
    visitors = 0
    page_visitors: dict[str, set[str]] = defaultdict(set)
    previous_visitor: str | None = None
    previous_ms = 0
    entry: str | None = None
    length = 0
    for visitor, stamp, _, url, _, _ in pageviews:
        page_visitors[url].add(visitor)
        moment = _ms(stamp)
        if visitor != previous_visitor or moment - previous_ms >= VISIT_GAP_MS:
            if entry is not None:
                counts = part["visits"][entry]
                counts[0] += 1
                counts[1] += length == 1
            if visitor != previous_visitor:
                visitors += 1
            entry = url
            length = 0
        length += 1
        previous_visitor, previous_ms = visitor, moment
    if entry is not None:
        counts = part["visits"][entry]
        counts[0] += 1
        counts[1] += length == 1
    part["visitors"] = visitors
    part["page_visitors"] = {url: len(seen) for url, seen in page_visitors.items()}
    return part


_STAMP = 8
"""Random bytes a summary starts with: month rollups name the days they were made from."""
_HEAD = struct.Struct("<I")


def _typecode(values: list[float]) -> str:
    """The narrowest array type that holds every value exactly (visible_ms is nearly always
    a whole number of milliseconds under 2**32)."""
    if all(type(value) is int for value in values):
        top = max(values, default=0)
        return "I" if top < 2**32 else "Q" if top < 2**64 else "d"
    return "d"


def encode(summary: dict[str, Any]) -> bytes:
    """A summary as stored: zlib JSON of the counts, then every part's visible times as one
    packed array: per page, sorted, named in the JSON by (url, count) in order, then all the
    part's together, sorted (the overall median selects over one run a part, not one a page).
    Loading packed numbers is `frombytes`, not a JSON parse of a million numbers."""
    values: list[float] = []
    parts = {}
    for key, part in summary["parts"].items():
        pages = []
        for url, times in part["visible"].items():
            pages.append((url, len(times)))
            values.extend(times)
        values.extend(sorted(chain(*part["visible"].values())))  # the part's, for its median
        parts[key] = {**part, "visible": pages}
    typecode = _typecode(values)
    head = zlib.compress(orjson.dumps({**summary, "parts": parts, "typecode": typecode}), 6)
    packed = zlib.compress(array(typecode, values).tobytes(), 1)
    return os.urandom(_STAMP) + _HEAD.pack(len(head)) + head + packed


def decode(blob: bytes) -> dict[str, Any]:
    """A stored summary, each part's visible times as {url: array (sorted)} and "all"."""
    (size,) = _HEAD.unpack_from(blob, _STAMP)
    start = _STAMP + _HEAD.size
    summary: dict[str, Any] = orjson.loads(zlib.decompress(blob[start : start + size]))
    values = array(summary.pop("typecode"))
    values.frombytes(zlib.decompress(blob[start + size :]))
    offset = 0
    for part in summary["parts"].values():
        pages = {}
        for url, count in part["visible"]:
            pages[url] = values[offset : offset + count]
            offset += count
        part["visible"] = pages
        count = sum(len(times) for times in pages.values())
        part["all"] = values[offset : offset + count]
        offset += count
    return summary


def day_rows(store: Store, day: date) -> list[tuple[Any, ...]]:
    start = day.isoformat() + "T00:00:00.000Z"
    end = (day + timedelta(days=1)).isoformat() + "T00:00:00.000Z"
    param = _PARAM[store.dialect]
    return store.query(
        f"SELECT id, {_TEXT_TIME[store.dialect]}, type, url, referrer, target, transport, data,"
        " bot, visitor, browser, os, device FROM records"
        f" WHERE received_at >= {param} AND received_at < {param}",
        [start, end],
    )


def finished(day: date, today: date | None = None) -> bool:
    """Whether a day can be kept: before yesterday (a leave can still be re-sent yesterday's)."""
    return day < (today or datetime.now(UTC).date()) - timedelta(days=1)


def _spans(days: list[date], today: date | None = None) -> dict[str, list[date]]:
    """The calendar months ("2026-11") `days` cover whole, then the weeks ("2026-11-02w",
    Monday to Sunday) they cover whole outside those months; every day of them finished.
    A 30-day window not aligned to a month then merges ~4 weeks and a few days."""
    wanted = set(days)
    spans: dict[str, list[date]] = {}
    taken: set[date] = set()
    for weekly in (False, True):
        for day in days:
            if day in taken or (day.weekday() != 0 if weekly else day.day != 1):
                continue
            span = [day]
            while True:
                step = span[-1] + timedelta(days=1)
                if len(span) == 7 if weekly else step.month != day.month:
                    break
                span.append(step)
            if all(one in wanted and one not in taken and finished(one, today) for one in span):
                spans[f"{day.isoformat()}w" if weekly else day.isoformat()[:7]] = span
                taken.update(span)
    return spans


def _fingerprint(month: str, stamps: list[bytes]) -> str:
    """The key of a month's rollup: its days' stamps (each day summary's random first bytes),
    so a month whose days were dropped and made again (rows changed) is not reused."""
    return f"{month}{MONTH_SEP}{hashlib.sha256(b''.join(stamps)).hexdigest()[:16]}"


MONTH_SEP = "~"
"""Ends a span's label: sorts after every day ("2026-11~…" > "2026-11-30"), never in a day key."""


def summaries(store: Store, days: list[date]) -> list[dict[str, Any]]:
    """The summaries covering `days`, each with its {day: {part: page views}} in "daily": a
    month's rollup where one is kept and still matches its days, else one summary a day
    (stored ones loaded, the others made, and stored if finished). A year merges ~12."""
    if not days:
        return []
    first, last = min(days).isoformat(), max(days).isoformat()
    stamps = {
        date.fromisoformat(day_text): bytes(stamp)
        for day_text, stamp in store.query(
            "SELECT day, substr(summary, 1, 8) FROM report_days"
            " WHERE version = ? AND day >= ? AND day <= ? AND length(day) = 10",
            [VERSION, first, last],
        )
    }
    months = _spans(days)
    keys = {
        month: _fingerprint(month, [stamps[day] for day in month_days])
        for month, month_days in months.items()
        if all(day in stamps for day in month_days)
    }
    units: list[dict[str, Any]] = []
    covered: set[date] = set()
    if keys:
        marks = ", ".join("?" for _ in keys)
        for key, blob in store.query(
            f"SELECT day, summary FROM report_days WHERE version = ? AND day IN ({marks})",
            [VERSION, *keys.values()],
        ):
            month = key.partition(MONTH_SEP)[0]
            units.append(decode(bytes(blob)))
            covered.update(months.pop(month))
    rest = [day for day in days if day not in covered]
    found: dict[date, dict[str, Any]] = {}
    made: list[tuple[str, bytes]] = []
    if rest:
        for day_text, blob in store.query(
            "SELECT day, summary FROM report_days"
            " WHERE version = ? AND day >= ? AND day <= ? AND length(day) = 10",
            [VERSION, min(rest).isoformat(), max(rest).isoformat()],
        ):
            day = date.fromisoformat(day_text)
            if day not in covered:
                found[day] = _dated(day, decode(bytes(blob)))
        for day in rest:
            if day in found:
                continue
            blob = encode(summarize(day_rows(store, day)))
            found[day] = _dated(day, decode(blob))  # the same shape as a stored one
            if finished(day):
                made.append((day.isoformat(), blob))
                stamps[day] = blob[:8]
    stale: list[str] = []
    for month, month_days in months.items():  # whole months without a matching rollup
        blob = encode(rollup([found[day] for day in month_days]))
        made.append((_fingerprint(month, [stamps[day] for day in month_days]), blob))
        stale.extend(
            key
            for (key,) in store.query(
                "SELECT day FROM report_days WHERE day > ? AND day < ?",
                [f"{month}{MONTH_SEP}", f"{month}{MONTH_SEP}{MONTH_SEP}"],
            )
        )
        units.append(decode(blob))
        covered.update(month_days)
    units.extend(found[day] for day in days if day not in covered)
    if made:
        try:
            if stale:
                store.drop_summaries(stale)
            store.put_summaries(VERSION, made)
        except StoreError as error:  # a read-only copy, say: the report is right, only slower
            log.warning("report summaries not kept: %s", error)
    return units


def _dated(day: date, summary: dict[str, Any]) -> dict[str, Any]:
    summary["daily"] = {
        day.isoformat(): {
            key: part["types"].get(PAGEVIEW, 0) for key, part in summary["parts"].items()
        }
    }
    return summary


def rollup(days: list[dict[str, Any]]) -> dict[str, Any]:
    """Days' summaries summed into one of the same shape (visible times merged, sorted)."""
    parts: dict[str, dict[str, Any]] = {}
    visits: dict[str, dict[str, Any]] = {}
    daily: dict[str, dict[str, int]] = {}
    for summary in days:
        daily.update(summary["daily"])
        for key, part in summary["parts"].items():
            into = parts.setdefault(key, empty())
            add_counts(into, part)
            for url, values in part["visible"].items():
                into["visible"][url].extend(values)
        for key, visit in summary["visits"].items():
            total = visits.setdefault(
                key,
                {"visits": defaultdict(lambda: [0, 0]), "visitors": 0, "page_visitors": Counter()},
            )
            for url, (count, bounced) in visit["visits"].items():
                total["visits"][url][0] += count
                total["visits"][url][1] += bounced
            total["visitors"] += visit["visitors"]
            total["page_visitors"].update(visit["page_visitors"])
    for part in parts.values():
        for values in part["visible"].values():
            values.sort()
    return {"parts": parts, "visits": visits, "daily": daily}
