"""`sitebeacon stats`: what the stored records say, as a text table or JSON.

Stats are computed in Python from a stream of rows, the same way for both stores, so the
numbers never depend on which database holds them.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from sitebeacon.collect.stores import open_store
from sitebeacon.protocol import RETRIED


@dataclass
class PageStats:
    """What happened on one page (its URL without the #fragment)."""

    pageviews: int = 0
    leaves: int = 0
    median_visible_ms: float | None = None
    outbound: int = 0
    outbound_targets: dict[str, int] = field(default_factory=dict)


@dataclass
class Stats:
    """Counts over every record, bots left out unless asked for."""

    records: int = 0
    bots_left_out: int = 0
    pages: dict[str, PageStats] = field(default_factory=dict)
    outbound_targets: dict[str, int] = field(default_factory=dict)
    transports: dict[str, int] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)
    """Records by type: pageview, leave, outbound, download and the custom ones."""
    retried: int = 0
    """Records that waited in the client's queue and came on a later page load."""


def _page(url: str) -> str:
    return url.partition("#")[0]


def _visible_ms(data: Any) -> float | None:
    value = data.get("visible_ms") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


def compute_stats(db_url: str, *, include_bots: bool) -> Stats:
    """Page views, leaves (median visible time), outbound clicks and the transport mix."""
    stats = Stats()
    visible: dict[str, list[float]] = {}
    targets: Counter[str] = Counter()
    page_targets: dict[str, Counter[str]] = {}
    transports: Counter[str] = Counter()
    types: Counter[str] = Counter()
    store = open_store(db_url, create=False)
    try:
        for record in store.iter_records():
            if record["bot"] and not include_bots:
                stats.bots_left_out += 1
                continue
            stats.records += 1
            kind = record["type"]
            types[kind] += 1
            data = record["data"]
            stats.retried += isinstance(data, dict) and data.get(RETRIED) == 1
            transports[record["transport"] or "unknown"] += 1
            url = _page(record["url"])
            page = stats.pages.setdefault(url, PageStats())
            if kind == "pageview":
                page.pageviews += 1
            elif kind == "leave":
                page.leaves += 1
                ms = _visible_ms(record["data"])
                if ms is not None:
                    visible.setdefault(url, []).append(ms)
            elif kind == "outbound":
                page.outbound += 1
                target = record["target"] or "unknown"
                targets[target] += 1
                page_targets.setdefault(url, Counter())[target] += 1
    finally:
        store.close()
    for url, page in stats.pages.items():
        if url in visible:
            page.median_visible_ms = statistics.median(visible[url])
        page.outbound_targets = dict(page_targets.get(url, Counter()).most_common())
    stats.pages = dict(sorted(stats.pages.items(), key=lambda item: (-item[1].pageviews, item[0])))
    stats.outbound_targets = dict(targets.most_common())
    stats.transports = dict(transports.most_common())
    stats.types = dict(types.most_common())
    return stats


def stats_json(stats: Stats) -> str:
    return json.dumps(asdict(stats), indent=2) + "\n"


def _seconds(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.1f}s"


def format_stats(stats: Stats) -> str:
    """A plain-text report for a terminal."""
    lines = [f"{stats.records} records"]
    if stats.bots_left_out:
        lines[0] += f" ({stats.bots_left_out} from bots left out; --include-bots counts them)"
    if not stats.records:
        return "\n".join(lines) + "\n"
    width = min(60, max(len("page"), *(len(url) for url in stats.pages)))
    lines += [
        "",
        f"{'page':<{width}}  {'views':>6}  {'leaves':>6}  {'median visible':>14}  {'outbound':>8}",
    ]
    for url, page in stats.pages.items():
        shown = url if len(url) <= width else url[: width - 1] + "…"
        lines.append(
            f"{shown:<{width}}  {page.pageviews:>6}  {page.leaves:>6}"
            f"  {_seconds(page.median_visible_ms):>14}  {page.outbound:>8}"
        )
    if stats.outbound_targets:
        lines += ["", "outbound clicks by target"]
        lines += [f"  {count:>6}  {target}" for target, count in stats.outbound_targets.items()]
    if stats.retried:
        lines += ["", f"records retried from the client queue: {stats.retried}"]
    lines += ["", "transport mix"]
    total = sum(stats.transports.values())
    lines += [
        f"  {name:<10}  {count:>6}  {100 * count / total:5.1f}%"
        for name, count in stats.transports.items()
    ]
    return "\n".join(lines) + "\n"
