"""`sitebeacon report`: the period from the options, then JSON, CSV (one file a panel) or HTML."""

from __future__ import annotations

import csv
import io
import sys
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from sitebeacon.collect.stores import open_store
from sitebeacon.errors import SitebeaconError
from sitebeacon.files import write_atomic, write_output
from sitebeacon.report.aggregate import Options, Period, build_report

DEFAULT_DAYS = 30


def parse_period(since: str | None, until: str | None, *, today: date | None = None) -> Period:
    """Defaults: the last 30 days up to today (UTC), both ends inclusive."""

    def day(text: str, flag: str) -> date:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise SitebeaconError(f"{flag} {text!r} is not a date: give YYYY-MM-DD") from None

    last = day(until, "--until") if until else (today or datetime.now(UTC).date())
    first = day(since, "--since") if since else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise SitebeaconError(f"--since {first} is after --until {last}")
    return Period(first, last)


def report_json(report: dict[str, Any]) -> str:
    return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n"


def _flat(value: Any) -> Any:
    if isinstance(value, dict):
        return "; ".join(f"{key} {count}" for key, count in value.items())
    if isinstance(value, list):
        return "; ".join(f"{item['value']} {item['count']}" for item in value)
    return "" if value is None else value


def panel_tables(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each panel as rows of plain values: the CSV files and the HTML's download links."""
    headline = [
        {
            "figure": key,
            "value": report[key],
            "previous": report["previous"][key],
            "change_pct": report["previous"].get(f"{key}_change"),
        }
        for key in ("pageviews", "visits", "visitors", "median_visible_ms", "outbound", "downloads")
    ]
    events = [
        {"name": event["name"], "count": event["count"], "key": key["key"], "values": key["values"]}
        for event in report["events"]
        for key in (event["keys"] or [{"key": "", "values": []}])
    ]
    quality = [{"figure": key, "value": value} for key, value in report["quality"].items()]
    tables = {
        "headline": headline,
        "daily": report["daily"],
        "pages": report["pages"],
        "referrers": report["referrers"],
        "utm": report["utm"],
        "entry_pages": report["entry_pages"],
        "targets": report["page_targets"],
        "events": events,
        "browsers": report["browsers"],
        "os": report["os"],
        "devices": report["devices"],
        "quality": quality,
    }
    return {
        name: [{k: _flat(v) for k, v in row.items()} for row in rows]
        for name, rows in tables.items()
    }


def table_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def write_csv(report: dict[str, Any], output: Path) -> None:
    """A directory of CSV files, or a zip when OUTPUT ends in .zip."""
    tables = panel_tables(report)
    if output.suffix == ".zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, rows in tables.items():
                info = zipfile.ZipInfo(f"{name}.csv", date_time=(1980, 1, 1, 0, 0, 0))
                archive.writestr(info, table_csv(rows), zipfile.ZIP_DEFLATED)
        write_output(output, buffer.getvalue())
        return
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SitebeaconError(f"{output}: cannot create: {error.strerror or error}") from error
    for name, rows in tables.items():
        write_atomic(output / f"{name}.csv", table_csv(rows).encode("utf-8"))


def write_report(
    db_url: str,
    *,
    output: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
    include_bots: bool,
    site: str | None,
) -> None:
    period = parse_period(since, until)
    store = open_store(db_url, create=False)
    try:
        report = build_report(store, period, Options(include_bots=include_bots, site=site))
    finally:
        store.close()
    if fmt == "json":
        text = report_json(report)
        if output is None or output == "-":
            sys.stdout.write(text)
        else:
            write_output(output, text.encode())
    elif fmt == "csv":
        write_csv(report, Path(output or "report-csv"))
    else:
        from sitebeacon.report.html import render_html

        target = Path(output or "report.html")
        write_output(target, render_html(report).encode())
        print(f"sitebeacon: wrote {target}", file=sys.stderr)
