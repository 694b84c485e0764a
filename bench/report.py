"""How fast `sitebeacon report` is on a realistic store, against `export | wc -l` on the same one.

Generates N months of a site (default 1M page views a month, ~2.1M records: zipf pages,
visits of a few page views, heavy-tailed visible times, 3% bots), written straight into a
SQLite file with executemany in large transactions (what `import` would take minutes for),
optionally copied into PostgreSQL, then times in the same run:

- `sitebeacon export --db URL | wc -l` (the baseline: one pass over every row),
- `sitebeacon report --format json` for the last month, and for the whole range,
- `sitebeacon report` (HTML) for the last month, with its size.

    python bench/report.py --months 1 --scale 1.0
    python bench/report.py --months 12 --scale 1.0 --keep /tmp/year.db
    SITEBEACON_TEST_PG=postgresql://... python bench/report.py --months 1 --pg
"""

from __future__ import annotations

import argparse
import calendar
import functools
import math
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sitebeacon.collect.stores import COLUMNS, open_store  # noqa: E402

BROWSERS = [
    (("Chrome 131", "Windows", "desktop"), 30),
    (("Chrome Mobile 131", "Android", "mobile"), 22),
    (("Mobile Safari 18", "iOS", "mobile"), 18),
    (("Safari 18", "Mac OS X", "desktop"), 8),
    (("Firefox 133", "Windows", "desktop"), 6),
    (("Firefox 133", "Linux", "desktop"), 3),
    (("Edge 131", "Windows", "desktop"), 7),
    (("Mobile Safari 18", "iOS", "tablet"), 3),
    (("Samsung Internet 27", "Android", "mobile"), 3),
]
TRANSPORTS = {"Chrome": "fetchlater", "Edge": "fetchlater", "Samsung": "beacon"}
REFERRERS = [
    ("https://www.google.com/", 30),
    ("https://duckduckgo.com/", 5),
    ("https://www.bing.com/", 3),
    ("https://news.ycombinator.com/", 4),
    ("https://www.reddit.com/r/programming/", 3),
    ("https://t.co/abc", 2),
    ("https://lobste.rs/", 1),
    ("https://example-blog.net/links", 2),
    (None, 50),
]
SITE = "https://blog.example"


def weighted(pairs: list[tuple[object, int]]) -> tuple[list[object], list[int]]:
    values, weights = zip(*pairs, strict=True)
    return list(values), list(weights)


@functools.lru_cache(maxsize=100_000)
def _second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def stamp(ms: int) -> str:
    """received_at of a record received at `ms` (Unix milliseconds), as the receiver writes it."""
    second, fraction = divmod(ms, 1000)
    return f"{_second(second)}.{fraction:03d}Z"


def record(
    visit: tuple[object, ...],
    id_: str,
    ms: int,
    type_: str,
    url: str,
    ref: object = None,
    *,
    target: str | None = None,
    seq: int = 0,
    data: str | None = None,
) -> tuple[object, ...]:
    """One row in COLUMNS order; `visit`: (transport, bot, visitor, browser, os, device)."""
    transport, *who = visit
    return (id_, stamp(ms), type_, url, ref, target, transport,
            "text/plain;charset=UTF-8", "no-cors", seq, ms, data, *who)  # fmt: skip


def generate(path: Path, first: date, days: int, pageviews_per_day: int, seed: int = 1) -> int:
    """Write the records straight into a fresh sitebeacon SQLite file; return how many."""
    open_store(f"sqlite:///{path}").close()  # the schema, as the receiver makes it
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    insert = f"INSERT INTO records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    rng = random.Random(seed)
    pages = [f"{SITE}/posts/{index:04d}-a-post-about-things/" for index in range(2000)]
    page_weights = [1 / (rank + 1) ** 1.1 for rank in range(len(pages))]
    page_cum = list(_cumulative(page_weights))
    browsers, browser_weights = weighted(BROWSERS)  # type: ignore[arg-type]
    referrers, referrer_weights = weighted(REFERRERS)  # type: ignore[arg-type]
    serial = 0
    total = 0
    for day_index in range(days):
        day = first + timedelta(days=day_index)
        weekday_factor = 0.75 if day.weekday() >= 5 else 1.1
        target = int(pageviews_per_day * weekday_factor)
        day_ms = calendar.timegm(day.timetuple()) * 1000
        rows: list[tuple[object, ...]] = []
        made = 0
        while made < target:
            visitor = f"{rng.getrandbits(64):016x}"
            agent = rng.choices(browsers, browser_weights)[0]
            browser, os_name, device = agent  # type: ignore[misc]
            bot = rng.random() < 0.03
            transport = TRANSPORTS.get(str(browser).split()[0], "beacon")
            at = day_ms + int(rng.random() * 86_000_000)
            views = min(1 + int(rng.expovariate(0.6)), 12)
            referrer = rng.choices(referrers, referrer_weights)[0]
            url = pages[_pick(page_cum, rng.random())]
            if referrer is not None and rng.random() < 0.06:
                url += "?utm_source=newsletter&utm_medium=email&utm_campaign=week" + str(
                    day.isocalendar()[1]
                )
            visit = (transport, bot, visitor, browser, os_name, device)
            for _ in range(views):
                serial += 1
                base = f"{at:012x}{serial:08x}"
                rows.append(record(visit, base + "p", at, "pageview", url, referrer))
                made += 1
                visible = int(math.exp(rng.gauss(9.6, 1.4)))  # median ~15 s, heavy tail
                leave_at = at + visible + rng.randrange(50, 5000)
                if rng.random() < 0.93:
                    data = f'{{"visible_ms":{visible}}}'
                    if rng.random() < 0.01:
                        data = f'{{"visible_ms":{visible},"retried":1}}'
                    seq = rng.randrange(0, 3)
                    rows.append(
                        record(visit, base + "l", leave_at, "leave", url, seq=seq, data=data)
                    )
                chance = rng.random()
                if chance < 0.1:
                    link = f"https://github.com/project{rng.randrange(40)}"
                    rows.append(
                        record(visit, base + "o", at + visible, "outbound", url, target=link)
                    )
                elif chance < 0.12:
                    link = f"{SITE}/files/slides-{rng.randrange(8)}.pdf"
                    rows.append(
                        record(visit, base + "d", at + visible, "download", url, target=link)
                    )
                elif chance < 0.135:
                    data = f'{{"plan":"{rng.choice(["free", "pro", "team"])}"}}'
                    rows.append(record(visit, base + "c", at + 1000, "signup", url, data=data))
                referrer = url
                url = pages[_pick(page_cum, rng.random())]
                at = leave_at + rng.randrange(1000, 120_000)
        rows.sort(key=lambda row: row[1])  # type: ignore[arg-type, return-value]
        db.execute("BEGIN")
        db.executemany(insert, rows)
        db.execute("COMMIT")
        total += len(rows)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")
    db.close()
    return total


def _cumulative(weights: list[float]) -> list[float]:
    total = sum(weights)
    running = 0.0
    out = []
    for weight in weights:
        running += weight / total
        out.append(running)
    return out


def _pick(cumulative: list[float], point: float) -> int:
    import bisect

    return min(bisect.bisect_left(cumulative, point), len(cumulative) - 1)


def timed(command: list[str], *, shell_pipe: str | None = None) -> tuple[float, float, str]:
    """Wall and child-CPU seconds of one command; its stdout (or the pipe's)."""
    before = os.times()
    start = time.perf_counter()
    if shell_pipe is not None:
        out = subprocess.run(
            " ".join(command) + " | " + shell_pipe,
            shell=True,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    else:
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0, help="x 1M page views a month")
    parser.add_argument("--keep", metavar="PATH", help="keep (or reuse) the SQLite file here")
    parser.add_argument("--pg", action="store_true", help="also copy into $SITEBEACON_TEST_PG")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "sitebeacon"]
    work = Path(tempfile.mkdtemp(prefix="sb-report-"))
    path = Path(args.keep) if args.keep else work / "bench.db"
    days = 30 * args.months
    until = date(2026, 11, 30)
    first = until - timedelta(days=days - 1)
    if not path.exists():
        start = time.perf_counter()
        count = generate(path, first, days, int(1_000_000 * args.scale / 30))
        print(f"generated {count:,} records in {time.perf_counter() - start:.0f} s -> {path}")
    stores = [f"sqlite:///{path}"]
    if args.pg:
        pg = os.environ["SITEBEACON_TEST_PG"]
        with open_store(pg) as store:
            store.query("SELECT 1")
        subprocess.run(
            ["psql", pg, "-q", "-c", "DROP TABLE IF EXISTS records, salts, report_days"], check=True
        )
        start = time.perf_counter()
        subprocess.run(
            " ".join([*cli, "export", "--db", stores[0]])
            + " | "
            + " ".join([*cli, "import", "--db", pg, "-"]),
            shell=True,
            check=True,
        )
        subprocess.run(["psql", pg, "-q", "-c", "ANALYZE records"], check=True)
        print(f"imported into PostgreSQL in {time.perf_counter() - start:.0f} s")
        stores.append(pg)
    month_since = (until - timedelta(days=29)).isoformat()
    for url in stores:
        name = "postgres" if url.startswith("postgres") else "sqlite"
        base_wall, _, lines = timed([*cli, "export", "--db", url], shell_pipe="wc -l")
        print(f"[{name}] export | wc -l: {int(lines):,} lines, {base_wall:.2f} s")
        # The first report sums up every finished day (and keeps the summaries); the next ones
        # merge them. Start from none, so both are measured.
        if name == "sqlite":
            db = sqlite3.connect(path)
            db.execute("DELETE FROM report_days")
            db.commit()
            db.close()
        else:
            subprocess.run(["psql", url, "-q", "-c", "DELETE FROM report_days"], check=True)
        month = ["--since", month_since, "--format", "json", "-o", "/dev/null"]
        runs = [("month json, first", month), ("month json, again", month)]
        # 30 days off the calendar month (week rollups and single days, not the month's).
        shifted = (until - timedelta(days=3)).isoformat()
        off = ["--since", (until - timedelta(days=32)).isoformat(), "--format", "json"]
        off += ["-o", "/dev/null", "--until", shifted]  # the first makes the week rollups
        runs += [("30 days off the month, first", off), ("30 days off the month, again", off)]
        if args.months > 1:
            whole = ["--since", first.isoformat(), "--format", "json", "-o", "/dev/null"]
            runs += [("whole json, first", whole), ("whole json, again", whole)]
        html = work / f"{name}.html"
        runs.append(("month html", ["--since", month_since, "-o", str(html)]))
        for label, extra in runs:
            end = [] if "--until" in extra else ["--until", until.isoformat()]
            wall, cpu, _ = timed([*cli, "report", "--db", url, *end, *extra])
            print(
                f"[{name}] report {label}: {wall:.2f} s wall, {cpu:.2f} s CPU"
                f" = {wall / base_wall:.2f}x export|wc -l"
            )
        print(f"[{name}] HTML size {html.stat().st_size / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
