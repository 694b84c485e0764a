"""The HTML report: one self-contained file drawn from Jinja2 templates (inline SVG + tables).

Charts are computed here (coordinates, ticks) and drawn by `templates/report.html.j2`, so the
file needs nothing from anywhere else and reads with JavaScript off; a few lines of inline JS
only sort tables. Same data, same bytes: nothing in it depends on the clock or on dict order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape

from sitebeacon.report.render import panel_tables, table_csv

TEMPLATES = Path(__file__).with_name("templates")
DASH = "\u2013"
"""What an empty figure shows."""
TOP_ROWS = 50
"""Rows per table in the HTML (the JSON and CSV formats have them all)."""
TRANSPORT_COLOURS = {
    "fetchlater": "var(--c1)",
    "beacon": "var(--c2)",
    "keepalive": "var(--c3)",
    "ping": "var(--c4)",
    "unknown": "var(--c5)",
}


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["j2", "html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = number
    environment.filters["seconds"] = seconds
    environment.filters["signed"] = signed
    return environment


def number(value: Any) -> str:
    if value is None:
        return DASH
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def seconds(ms: Any) -> str:
    if ms is None:
        return DASH
    total = ms / 1000
    if total < 60:
        return f"{total:.1f} s"
    return f"{int(total // 60)} min {int(total % 60):02d} s"


def signed(value: Any) -> str:
    if value is None:
        return ""
    return f"{'+' if value > 0 else ''}{value:.1f}%"


def nice_ceiling(value: float) -> float:
    """A round top for an axis: 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def daily_chart(
    daily: Sequence[dict[str, Any]], width: int = 720, height: int = 220
) -> dict[str, Any]:
    """Bars for this period, a line for the previous one (weekday-aligned), y ticks."""
    left, right, top, bottom = 48, 8, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([1, *(d["pageviews"] for d in daily), *(d["previous_pageviews"] for d in daily)])
    ceiling = nice_ceiling(peak)
    count = max(1, len(daily))
    slot = plot_w / count
    bar_w = max(1.0, slot * 0.7)

    def y(value: float) -> float:
        return round(top + plot_h - plot_h * value / ceiling, 1)

    bars = []
    points = []
    labels = []
    for index, day in enumerate(daily):
        x = left + index * slot
        bars.append(
            {
                "x": round(x + (slot - bar_w) / 2, 1),
                "y": y(day["pageviews"]),
                "w": round(bar_w, 1),
                "h": round(top + plot_h - y(day["pageviews"]), 1),
                "title": f"{day['date']}: {day['pageviews']:,} page views"
                f" ({day['previous_date']}: {day['previous_pageviews']:,})",
            }
        )
        points.append(f"{round(x + slot / 2, 1)},{y(day['previous_pageviews'])}")
        step = max(1, math.ceil(count / 8))
        if index % step == 0:
            moment = date.fromisoformat(day["date"])
            labels.append({"x": round(x + slot / 2, 1), "text": moment.strftime("%a %d %b")})
    ticks = [{"y": y(ceiling * f), "text": number(ceiling * f)} for f in (0, 0.25, 0.5, 0.75, 1)]
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "base": top + plot_h,
        "bars": bars,
        "line": " ".join(points),
        "ticks": ticks,
        "labels": labels,
        "label_y": height - 8,
    }


def mix_bar(transports: dict[str, int], width: int = 160) -> list[dict[str, Any]]:
    """A stacked bar of the transport mix (each part with its share as a tooltip)."""
    total = sum(transports.values())
    if not total:
        return []
    parts = []
    x = 0.0
    for name, count in transports.items():
        w = width * count / total
        parts.append(
            {
                "x": round(x, 1),
                "w": round(w, 1),
                "colour": TRANSPORT_COLOURS.get(name, "var(--c5)"),
                "title": f"{name}: {count:,} ({100 * count / total:.1f}%)",
            }
        )
        x += w
    return parts


def data_uri(rows: list[dict[str, Any]]) -> str:
    return "data:text/csv;charset=utf-8," + quote(table_csv(rows), safe=" ,;:/=?&@()'!*-_.~")


def render_html(report: dict[str, Any], *, live: bool = False, days: str = "1") -> str:
    """The report as one HTML document; `live` adds the dashboard's refresh (same markup)."""
    shown = dict(report)
    for key in ("pages", "referrers", "utm", "entry_pages", "page_targets"):
        shown[key] = report[key][:TOP_ROWS]
    tables = panel_tables(shown)
    downloads = {name: data_uri(rows) for name, rows in tables.items()}
    headline = [
        ("Page views", "pageviews", number),
        ("Visits", "visits", number),
        ("Unique visitors", "visitors", number),
        ("Median visible time", "median_visible_ms", seconds),
        ("Outbound clicks", "outbound", number),
        ("Downloads", "downloads", number),
    ]
    cards = [
        {
            "label": label,
            "value": fmt(report[key]),
            "previous": fmt(report["previous"][key]),
            "change": report["previous"].get(f"{key}_change"),
        }
        for label, key, fmt in headline
    ]
    classes = {
        title: [{**row, "mix": mix_bar(row["transports"])} for row in report[key][:20]]
        for title, key in (
            ("Browsers", "browsers"),
            ("Operating systems", "os"),
            ("Devices", "devices"),
        )
    }
    quality_mix = mix_bar(report["quality"]["transports"], width=480)
    template = _environment().get_template("report.html.j2")
    return template.render(
        r=shown,
        full=report,
        cards=cards,
        chart=daily_chart(report["daily"]),
        classes=classes,
        quality_mix=quality_mix,
        csv=downloads,
        top=TOP_ROWS,
        live=live,
        days=days,
        colours=TRANSPORT_COLOURS,
    )
