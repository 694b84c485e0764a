"""`sitebeacon report --format json` against a straightforward recomputation in Python over the
exported records of random data: even and odd median counts, empty periods, bots, visits
around the 30-minute gap, several hosts, custom events. Run on both stores, and run twice (the
second time from the stored daily summaries)."""

from __future__ import annotations

import io
import statistics
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
from files import make_row
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sitebeacon.collect.stores import open_store
from sitebeacon.collect.types import Row
from sitebeacon.report.aggregate import Options, Period, build_report
from sitebeacon.report.export import export_records

DAYS = [date(2024, 4, 29) + timedelta(days=n) for n in range(35)]
"""Across all of May, so some periods hold a whole month (kept as a month's rollup)."""
URLS = ["https://a.example/", "https://a.example/post", "https://b.example/x?utm_source=nl"]
REFS = [None, "", "https://www.google.com/search", "https://a.example/", "https://news.example/"]
TYPES = ["pageview", "pageview", "pageview", "leave", "leave", "outbound", "download", "signup"]


@st.composite
def records(draw: st.DrawFn) -> list[Row]:
    count = draw(st.integers(0, 60))
    rows = []
    for index in range(count):
        day = draw(st.sampled_from(DAYS))
        # Minutes from a small set, so gaps of exactly 30 minutes and ties happen.
        minute = draw(st.sampled_from([0, 1, 29, 30, 31, 59, 60, 90, 1439]))
        millisecond = draw(st.sampled_from([0, 1, 999]))
        moment = datetime(day.year, day.month, day.day) + timedelta(
            minutes=minute, milliseconds=millisecond
        )
        kind = draw(st.sampled_from(TYPES))
        data = None
        if kind == "leave":
            value = draw(
                st.one_of(
                    st.integers(0, 100_000),
                    st.sampled_from([9_999, 10_000, 29_999, 30_000]),
                    st.floats(0, 1e6, allow_nan=False),
                    st.just("x"),
                    st.just(True),
                    st.just(-5),
                )
            )
            fields: dict[str, Any] = {"visible_ms": value}
            if draw(st.booleans()):
                fields["retried"] = draw(st.sampled_from([True, False, 1, 0, 2]))
            data = orjson.dumps(fields).decode()
        elif kind == "signup":
            data = orjson.dumps({"plan": draw(st.sampled_from(["a", "b", 1, None]))}).decode()
        rows.append(
            Row(
                id=f"r{index}",
                received_at=moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millisecond:03d}Z",
                type=kind,
                url=draw(st.sampled_from(URLS)),
                referrer=draw(st.sampled_from(REFS)) if kind == "pageview" else None,
                target=draw(st.sampled_from(["https://out/1", "https://out/2"]))
                if kind in ("outbound", "download")
                else None,
                transport=draw(st.sampled_from(["beacon", "fetchlater", None])),
                content_type="text/plain",
                fetch_mode="no-cors",
                seq=0,
                ts=None,
                data=data,
                bot=draw(st.booleans()) and draw(st.booleans()),
                visitor=draw(st.sampled_from([None, "v1", "v2", "v3"])),
                browser=draw(st.sampled_from([None, "Firefox 128", "Chrome 131"])),
                os=draw(st.sampled_from([None, "Linux"])),
                device=draw(st.sampled_from([None, "desktop", "mobile"])),
            )
        )
    return rows


def p75(values: list[float]) -> float | None:
    """Linear between closest ranks, written out."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * 0.75
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def visible(record: dict[str, Any]) -> float | None:
    value = (record["data"] or {}).get("visible_ms")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return value


def expected(exported: list[dict[str, Any]], since: date, until: date, bots: bool) -> dict:
    """The numbers, from the exported records, the plain way."""
    inside = [
        r
        for r in exported
        if since.isoformat() <= r["received_at"][:10] <= until.isoformat()
        and (bots or not r["bot"])
    ]
    views = [r for r in inside if r["type"] == "pageview"]
    leaves = [r for r in inside if r["type"] == "leave"]
    values = [v for r in leaves if (v := visible(r)) is not None]
    # Visits: per visitor (ids are daily, so per day too), sorted by time then id.
    by_visitor: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in views:
        if r["visitor"] is not None:
            by_visitor[(r["received_at"][:10], r["visitor"])].append(r)
    visits = bounces = 0
    entries: Counter[str] = Counter()
    for group in by_visitor.values():
        group.sort(key=lambda r: (r["received_at"], r["id"]))
        lengths: list[int] = []
        last = None
        for r in group:
            moment = datetime.fromisoformat(r["received_at"].replace("Z", "+00:00"))
            if last is None or (moment - last).total_seconds() >= 1800:
                lengths.append(0)
                entries[r["url"]] += 1
            lengths[-1] += 1
            last = moment
        visits += len(lengths)
        bounces += sum(1 for n in lengths if n == 1)
    pages = {}
    for url in {r["url"] for r in views + leaves}:
        page_values = [v for r in leaves if r["url"] == url and (v := visible(r)) is not None]
        page_views = [r for r in views if r["url"] == url]
        pages[url] = {
            "pageviews": len(page_views),
            "leaves": sum(1 for r in leaves if r["url"] == url),
            "visitors": len(
                {(r["received_at"][:10], r["visitor"]) for r in page_views if r["visitor"]}
            ),
            "median_visible_ms": statistics.median(page_values) if page_values else None,
            "p75_visible_ms": p75(page_values),
            "outbound": sum(1 for r in inside if r["type"] == "outbound" and r["url"] == url),
        }
    site_hosts = {urlsplit(r["url"]).hostname for r in inside}
    referrers: Counter[str] = Counter()
    for r in views:
        host = urlsplit(r["referrer"] or "").hostname
        if host and host not in site_hosts:
            referrers[host] += 1
    targets = Counter(r["target"] for r in inside if r["type"] == "outbound")
    daily = Counter(r["received_at"][:10] for r in views)
    return {
        "pageviews": len(views),
        "leaves": len(leaves),
        "visits": visits,
        "bounces": bounces,
        "visitors": len({(r["received_at"][:10], r["visitor"]) for r in views if r["visitor"]}),
        "median_visible_ms": statistics.median(values) if values else None,
        "outbound": sum(1 for r in inside if r["type"] == "outbound"),
        "downloads": sum(1 for r in inside if r["type"] == "download"),
        "entries": dict(entries),
        "pages": pages,
        "referrers": dict(referrers),
        "targets": dict(targets),
        "daily": {d.isoformat(): daily.get(d.isoformat(), 0) for d in _dates(since, until)},
        "bots_left_out": None
        if bots
        else sum(
            1
            for r in exported
            if r["bot"] and since.isoformat() <= r["received_at"][:10] <= until.isoformat()
        ),
        "retried": sum(
            1
            for r in inside
            if r["type"] in ("pageview", "leave", "outbound", "download")
            and isinstance(r["data"], dict)
            and (
                r["data"].get("retried") is True
                or (type(r["data"].get("retried")) is int and r["data"]["retried"] > 0)
            )
        ),
        "events": Counter(r["type"] for r in inside if r["type"] == "signup"),
    }


def _dates(since: date, until: date) -> list[date]:
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


def check(report: dict[str, Any], want: dict[str, Any]) -> None:
    for key in ("pageviews", "leaves", "visits", "bounces", "visitors", "outbound", "downloads"):
        assert report[key] == want[key], key
    assert report["median_visible_ms"] == want["median_visible_ms"]
    got_pages = {p["url"]: p for p in report["pages"]}
    assert set(got_pages) == set(want["pages"])
    for url, page in want["pages"].items():
        for key, value in page.items():
            assert got_pages[url][key] == value, (url, key)
    views = [p["pageviews"] for p in report["pages"]]
    assert views == sorted(views, reverse=True)
    assert {e["url"]: e["visits"] for e in report["entry_pages"]} == want["entries"]
    assert {r["host"]: r["pageviews"] for r in report["referrers"]} == want["referrers"]
    assert {t["target"]: t["clicks"] for t in report["targets"]} == want["targets"]
    assert {d["date"]: d["pageviews"] for d in report["daily"]} == want["daily"]
    assert report["quality"]["bots_left_out"] == want["bots_left_out"]
    assert report["quality"]["retried"] == want["retried"]
    assert {e["name"]: e["count"] for e in report["events"]} == dict(want["events"])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=records(),
    start=st.integers(0, len(DAYS) - 1),
    length=st.integers(1, len(DAYS)),
    bots=st.booleans(),
)
def test_json_matches_a_plain_recomputation(
    store_url: str, rows: list[Row], start: int, length: int, bots: bool
) -> None:
    with open_store(store_url) as store:
        _wipe(store)
        store.add(rows)
        out = io.StringIO()
        export_records(store_url, out)
        exported = [orjson.loads(line) for line in out.getvalue().splitlines()]
        since = DAYS[start]
        until = since + timedelta(days=length - 1)
        period = Period(since, until)
        want = expected(exported, since, until, bots)
        first = build_report(store, period, Options(include_bots=bots))
        check(first, want)
        # Again, now from the summaries stored for those (long finished) days.
        second = build_report(store, period, Options(include_bots=bots))
        assert second == first
        previous = period.previous()
        before = expected(exported, previous.since, previous.until, bots)
        assert first["previous"]["pageviews"] == before["pageviews"]
        assert first["previous"]["median_visible_ms"] == before["median_visible_ms"]
        # A leave re-sent days later with a higher seq: its day's summary (and the month's
        # rollup made from it) must not be reused.
        leaves = [row for row in rows if row.type == "leave"]
        if leaves:
            store.add([leaves[0]._replace(seq=1, data='{"visible_ms": 123456}')])
            out = io.StringIO()
            export_records(store_url, out)
            exported = [orjson.loads(line) for line in out.getvalue().splitlines()]
            third = build_report(store, period, Options(include_bots=bots))
            check(third, expected(exported, since, until, bots))
            assert build_report(store, period, Options(include_bots=bots)) == third


def _wipe(store: Any) -> None:
    """Delete every record and summary (the store's own write path; the fixture's store is
    reused across hypothesis examples)."""
    if store.dialect == "postgres":
        import psycopg

        with psycopg.connect(store.url, autocommit=True) as db:
            db.execute("TRUNCATE records, report_days")
    else:
        import sqlite3

        db = sqlite3.connect(store.path, isolation_level=None)
        db.execute("DELETE FROM records")
        db.execute("DELETE FROM report_days")
        db.close()


def test_site_filter_and_empty_period(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_store(url) as store:
        base = make_row(
            "a",
            received_at="2024-05-02T10:00:00.000Z",
            url=URLS[0],
            content_type=None,
            fetch_mode=None,
            visitor="v",
        )
        store.add([base, base._replace(id="b", url=URLS[2])])
        only_b = build_report(store, Period(DAYS[3], DAYS[3]), Options(site="b.example"))
        assert only_b["pageviews"] == 1
        assert only_b["utm"] == [{"source": "nl", "medium": "", "campaign": "", "pageviews": 1}]
        empty = build_report(store, Period(DAYS[7], DAYS[8]))
        assert empty["pageviews"] == 0
        assert empty["median_visible_ms"] is None
        assert empty["pages"] == []
        assert [d["pageviews"] for d in empty["daily"]] == [0, 0]
