"""The report's numbers: aggregated in SQL by the store, finished in Python.

A report is the merge of exact summaries (`summary.py`): each finished day is summed up once,
kept in the store (whole months and weeks also as rollups), and merged with the others; today's
and yesterday's are made afresh. Medians stay exact: a summary keeps every leave's visible time
per page, sorted, and the middle values are selected from those runs, as `statistics.median`
has it (the mean of the two middle values for an even count).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import chain
from typing import Any

import orjson

from sitebeacon.collect.stores import Store
from sitebeacon.protocol import DOWNLOAD, LEAVE, OUTBOUND, PAGEVIEW
from sitebeacon.report.summary import SEP, add_counts, empty, host_of, summaries

QUICK_MS = 10_000
"""A leave under 10 s visible is a quick exit."""
READ_MS = 30_000
"""A leave of at least 30 s visible counts as read."""
TOP_VALUES = 10
"""Values listed per custom-event data key."""

SEARCH_HOSTS = (
    "google.",
    "bing.",
    "duckduckgo.",
    "yahoo.",
    "yandex.",
    "baidu.",
    "ecosia.",
    "qwant.",
    "startpage.",
    "search.brave.",
    "kagi.",
    "naver.",
    "seznam.",
)
SOCIAL_HOSTS = (
    "facebook.",
    "fb.",
    "t.co",
    "twitter.",
    "x.com",
    "linkedin.",
    "lnkd.in",
    "reddit.",
    "news.ycombinator.",
    "mastodon.",
    "instagram.",
    "youtube.",
    "pinterest.",
    "bsky.",
    "threads.",
    "lobste.rs",
    "tiktok.",
    "whatsapp.",
    "telegram.",
)


@dataclass(frozen=True)
class Period:
    """since..until inclusive, by received_at date in UTC."""

    since: date
    until: date

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def bounds(self) -> tuple[str, str]:
        end = self.until + timedelta(days=1)
        return f"{self.since.isoformat()}T00:00:00.000Z", f"{end.isoformat()}T00:00:00.000Z"

    def previous(self) -> Period:
        """The comparison period: as long, ending whole weeks earlier, so weekdays line up."""
        shift = timedelta(days=7 * math.ceil(self.days / 7))
        return Period(self.since - shift, self.until - shift)

    def dates(self) -> list[date]:
        return [self.since + timedelta(days=index) for index in range(self.days)]


@dataclass(frozen=True)
class Options:
    include_bots: bool = False
    site: str | None = None


def median(values: Sequence[float]) -> float | None:
    """`values` sorted; the mean of the two middle values for an even count."""
    count = len(values)
    if not count:
        return None
    middle = count // 2
    if count % 2:
        return _number(values[middle])
    return _number((values[middle - 1] + values[middle]) / 2)


def median_of_runs(runs: Iterable[Sequence[float]]) -> float | None:
    """The median of every value of sorted `runs`, without merging them: each middle value is
    found by bisecting the value range (counting with `bisect` in every run), then taken
    exactly as the smallest stored value above the bound. ~100 steps x runs, not n log n."""
    lists = [run for run in runs if run]
    total = sum(len(run) for run in lists)
    if not total:
        return None
    middle = [_kth(lists, (total - 1) // 2, SMALL), _kth(lists, total // 2, SMALL)]
    return _number((middle[0] + middle[1]) / 2)


def _kth(lists: list[Sequence[float]], rank: int, leave: int) -> float:
    """The value of 0-based `rank` among every value of the sorted lists.

    Bisects the value range, narrowing each list to its values inside the range, until few
    values are left: those are sorted and the answer read off (exact; no interpolation)."""
    low = min(run[0] for run in lists) - 1.0  # no value at or below it
    high = float(max(run[-1] for run in lists))  # every value at or below it
    below = 0  # values at or below `low`
    active = [(run, 0, len(run)) for run in lists]  # values in (low, high]
    while sum(end - start for _, start, end in active) > leave:
        middle = (low + high) / 2
        if not low < middle < high:
            break  # adjacent floats: no value lies strictly between
        cuts = [
            (run, start, bisect.bisect_right(run, middle, start, end), end)
            for run, start, end in active
        ]
        at_or_below = below + sum(cut - start for _, start, cut, _ in cuts)
        if at_or_below > rank:
            high = middle
            active = [(run, start, cut) for run, start, cut, _ in cuts if cut > start]
        else:
            low, below = middle, at_or_below
            active = [(run, cut, end) for run, _, cut, end in cuts if end > cut]
    rest = sorted(value for run, start, end in active for value in run[start:end])
    return rest[rank - below]


SMALL = 1024
"""Up to this many values a page's runs are merged by sorting; above, ranks are selected
(bisecting a dozen runs beats sorting a year's values of the long tail)."""


def _page_times(
    runs: Sequence[Sequence[float]],
) -> tuple[int, float | None, float | None, int, int]:
    """(count, median, p75, quick exits, reads) of a page's sorted runs of visible times.

    Small pages sort their values once; large ones (the top pages of a year) select the few
    ranks the figures need with `_kth` and count the thresholds by bisecting each run."""
    lists = [run for run in runs if len(run)]
    count = sum(len(run) for run in lists)
    if count <= SMALL or len(lists) == 1:
        values: Sequence[float] = lists[0] if len(lists) == 1 else sorted(chain(*lists))
        quick = bisect.bisect_left(values, QUICK_MS)
        read = count - bisect.bisect_left(values, READ_MS)
        return count, median(values), percentile(values, 0.75), quick, read
    quick = sum(bisect.bisect_left(run, QUICK_MS) for run in lists)
    read = count - sum(bisect.bisect_left(run, READ_MS) for run in lists)
    middle = _number((_kth(lists, (count - 1) // 2, SMALL) + _kth(lists, count // 2, SMALL)) / 2)
    position = (count - 1) * 0.75
    low = math.floor(position)
    low_value = _kth(lists, low, SMALL)
    high_value = _kth(lists, min(low + 1, count - 1), SMALL)
    p75 = _number(low_value + (high_value - low_value) * (position - low))
    return count, middle, p75, quick, read


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """`values` sorted; linear between closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    position = (len(values) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return _number(values[low] + (values[high] - values[low]) * (position - low))


def _number(value: float) -> float:
    """Whole numbers as ints in JSON (`1500`, not `1500.0`)."""
    return int(value) if float(value).is_integer() else value


def referrer_group(host: str) -> str:
    bare = host.removeprefix("www.").removeprefix("m.")
    if any(bare.startswith(word) or f".{word}" in f".{bare}" for word in SEARCH_HOSTS):
        return "search"
    if any(bare.startswith(word) or f".{word}" in f".{bare}" for word in SOCIAL_HOSTS):
        return "social"
    return "other"


def value_text(value: Any) -> str:
    """A custom event's data value as listed: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def pct(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def change(now: float | None, before: float | None) -> float | None:
    """% change against the previous period (None where it has no meaning)."""
    if now is None or before is None or not before:
        return None
    return round(100 * (now - before) / before, 1)


def _merge(selected: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> dict[str, Any]:
    """Sum summary parts (days x hosts x bot classes) and the matching visit figures;
    visible times stay sorted per page."""
    parts, visits = selected
    total = empty() | {
        "all": [],
        "visitors": 0,
        "visits": defaultdict(lambda: [0, 0]),
        "page_visitors": Counter(),
    }
    for part in parts:
        add_counts(total, part)
        for url, values in part["visible"].items():
            total["visible"][url].append(values)  # sorted runs, merged only where needed
        total["all"].append(part["all"])
    for visit in visits:
        for url, counts in visit["visits"].items():
            into = total["visits"][url]
            into[0] += counts[0]
            into[1] += counts[1]
        total["visitors"] += visit["visitors"]
        total["page_visitors"].update(visit["page_visitors"])
    return total


def _select(
    units: list[dict[str, Any]], options: Options, *, bots: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The parts a report counts (or, with `bots`, the bot parts it leaves out), and the
    visit figures made for the same selection."""
    chosen = []
    visits = []
    visit_key = f"{_site(options) or '*'}{SEP}{'*' if options.include_bots else '0'}"
    for summary in units:
        for key, part in summary["parts"].items():
            if _counted(key, options, bots=bots):
                chosen.append(part)
        if not bots and visit_key in summary["visits"]:
            visits.append(summary["visits"][visit_key])
    return chosen, visits


def _site(options: Options) -> str | None:
    return options.site.lower() if options.site else None


def _counted(key: str, options: Options, *, bots: bool = False) -> bool:
    """Whether a part ("host<SEP>bot") is counted (or, with `bots`, is a bot part left out)."""
    host, _, bot = key.partition(SEP)
    site = _site(options)
    if site is not None and host != site:
        return False
    if bots:
        return bot == "1"
    return bot == "0" or options.include_bots


def _daily(units: list[dict[str, Any]], options: Options) -> Counter[str]:
    """Page views by day, from each summary's per-day, per-part figures."""
    days: Counter[str] = Counter()
    for summary in units:
        for day, parts in summary["daily"].items():
            days[day] += sum(count for key, count in parts.items() if _counted(key, options))
    return days


def _headline(total: dict[str, Any]) -> dict[str, Any]:
    types = total["types"]
    visits = sum(v for v, _ in total["visits"].values())
    return {
        "pageviews": types.get(PAGEVIEW, 0),
        "visits": visits,
        "bounces": sum(b for _, b in total["visits"].values()),
        "visitors": total["visitors"],
        "leaves": types.get(LEAVE, 0),
        "median_visible_ms": median_of_runs(total["all"]),
        "outbound": types.get(OUTBOUND, 0),
        "downloads": types.get(DOWNLOAD, 0),
    }


def build_report(store: Store, period: Period, options: Options | None = None) -> dict[str, Any]:
    """Every number of the report, as the JSON format has it (the HTML and CSV draw on it)."""
    options = options or Options()
    previous = period.previous()
    this_days = summaries(store, period.dates())
    before_days = summaries(store, previous.dates())
    this_daily = _daily(this_days, options)
    before_daily = _daily(before_days, options)
    total = _merge(_select(this_days, options))
    before_total = _merge(_select(before_days, options))
    head = _headline(total)
    before = _headline(before_total)

    types: Counter[str] = total["types"]
    transports: Counter[str] = Counter()
    classes: dict[str, dict[str, dict[str, Any]]] = {"browser": {}, "os": {}, "device": {}}
    for key, count in total["mix"].items():
        kind, transport, browser, os, device = key.split(SEP)
        transports[transport or "unknown"] += count
        for name, value in (("browser", browser), ("os", os), ("device", device)):
            entry = classes[name].setdefault(
                value or "unknown", {"pageviews": 0, "leaves": 0, "transports": Counter()}
            )
            if kind == PAGEVIEW:
                entry["pageviews"] += count
            elif kind == LEAVE:
                entry["leaves"] += count
            entry["transports"][transport or "unknown"] += count

    page_rows = []
    for url, (views, leaves, outbound, downloads) in total["pages"].items():
        if not views and not leaves:
            continue  # only outbound/download records name it: listed under targets
        count, middle, p75, quick, read = _page_times(total["visible"].get(url, []))
        page_rows.append(
            {
                "url": url,
                "pageviews": views,
                "visitors": total["page_visitors"].get(url, 0),
                "leaves": leaves,
                "median_visible_ms": middle,
                "p75_visible_ms": p75,
                "quick_exits": pct(quick, count),
                "read_share": pct(read, count),
                "outbound": outbound,
                "outbound_per_view": round(outbound / views, 3) if views else None,
                "downloads": downloads,
            }
        )
    page_rows.sort(key=lambda row: (-row["pageviews"], -row["leaves"], row["url"]))

    site_hosts = {host_of(url) for url in total["pages"]}
    referrers: Counter[str] = Counter()
    direct = internal = 0
    for host, count in total["referrers"].items():
        if not host:
            direct += count
        elif host in site_hosts:
            internal += count
        else:
            referrers[host] += count

    targets: Counter[str] = Counter()
    downloads_by: Counter[str] = Counter()
    page_targets: list[dict[str, Any]] = []
    for key, count in total["targets"].items():
        url, kind, target = key.split(SEP)
        (targets if kind == OUTBOUND else downloads_by)[target] += count
        page_targets.append({"url": url, "type": kind, "target": target, "clicks": count})
    page_targets.sort(key=lambda row: (-row["clicks"], row["url"], row["type"], row["target"]))

    events: dict[str, dict[str, Any]] = {}
    for key, count in total["events"].items():
        kind, _, data = key.partition(SEP)
        event = events.setdefault(kind, {"count": 0, "keys": defaultdict(Counter)})
        event["count"] += count
        decoded = orjson.loads(data) if data else {}
        if isinstance(decoded, dict):
            for name, value in decoded.items():
                event["keys"][name][value_text(value)] += count

    bots = None
    if not options.include_bots:
        bots = sum(
            sum(part["types"].values()) for part in _select(this_days, options, bots=True)[0]
        )

    daily = []
    for day, previous_day in zip(period.dates(), previous.dates(), strict=True):
        daily.append(
            {
                "date": day.isoformat(),
                "pageviews": this_daily[day.isoformat()],
                "previous_date": previous_day.isoformat(),
                "previous_pageviews": before_daily[previous_day.isoformat()],
            }
        )

    pageviews = head["pageviews"]
    report: dict[str, Any] = {
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
        "site": options.site,
        "include_bots": options.include_bots,
        "records": sum(types.values()),
        **head,
        "bounce_rate": pct(head["bounces"], head["visits"]),
        "custom_events": sum(event["count"] for event in events.values()),
        "previous": {"since": previous.since.isoformat(), "until": previous.until.isoformat()},
        "daily": daily,
        "pages": page_rows,
        "referrers": [
            {"host": host, "group": referrer_group(host), "pageviews": count}
            for host, count in _ranked(referrers)
        ],
        "referrer_groups": _grouped(referrers, direct, internal),
        "utm": [
            {"source": s, "medium": m, "campaign": c, "pageviews": count}
            for (s, m, c), count in sorted(
                ((tuple(key.split(SEP)), count) for key, count in total["utm"].items()),
                key=lambda item: (-item[1], item[0]),
            )
        ],
        "entry_pages": [
            {"url": url, "visits": visits, "bounces": bounced}
            for url, (visits, bounced) in sorted(
                total["visits"].items(), key=lambda item: (-item[1][0], item[0])
            )
        ],
        "targets": [{"target": t, "clicks": c} for t, c in _ranked(targets)],
        "downloads_by_target": [{"target": t, "downloads": c} for t, c in _ranked(downloads_by)],
        "page_targets": page_targets,
        "events": [
            {
                "name": name,
                "count": event["count"],
                "keys": [
                    {
                        "key": key,
                        "count": sum(values.values()),
                        "values": [
                            {"value": value, "count": count}
                            for value, count in _ranked(values)[:TOP_VALUES]
                        ],
                    }
                    for key, values in sorted(event["keys"].items())
                ],
            }
            for name, event in sorted(events.items(), key=lambda item: (-item[1]["count"], item[0]))
        ],
        "browsers": _classes(classes["browser"]),
        "os": _classes(classes["os"]),
        "devices": _classes(classes["device"]),
        "quality": {
            "bots_left_out": bots,
            "transports": dict(_ranked(transports)),
            "pageviews_with_leave": pct(min(head["leaves"], pageviews), pageviews),
            "retried": total["retried"],
            "pageviews_without_visitor": total["no_visitor"],
            "pageviews_without_client_class": total["no_class"],
        },
    }
    report["previous"].update(before)
    for key in ("pageviews", "visits", "visitors", "median_visible_ms", "outbound", "downloads"):
        report["previous"][f"{key}_change"] = change(report[key], before[key])
    return report


def _ranked(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def _grouped(referrers: Counter[str], direct: int, internal: int) -> dict[str, int]:
    groups: Counter[str] = Counter({"search": 0, "social": 0, "other": 0})
    for host, count in referrers.items():
        groups[referrer_group(host)] += count
    return {**groups, "direct": direct, "internal": internal}


def _classes(entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name, entry in entries.items():
        if not entry["pageviews"] and not entry["leaves"]:
            continue
        rows.append(
            {
                "name": name,
                "pageviews": entry["pageviews"],
                "leaves": entry["leaves"],
                "leaves_per_pageview": round(entry["leaves"] / entry["pageviews"], 3)
                if entry["pageviews"]
                else None,
                "transports": dict(_ranked(entry["transports"])),
            }
        )
    rows.sort(key=lambda row: (-row["pageviews"], row["name"]))
    return rows
