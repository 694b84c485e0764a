"""Daily summaries made beside the receiver, so the first report over live data is fast too.

`import` makes the summaries of the days it writes; rows that arrive through `/collect` have
none until a report needs them, and that first report then reads every finished day's rows
(about 40 s for a month of a 1M-view site). `sitebeacon receive` runs a `SummaryKeeper`: once
at start (after a short delay) and then every hour, a child process summarises each finished
day that has no summary yet, oldest first, one day a transaction, then the rollups of the
whole months and weeks among them. The child runs at a lower priority and with its own store
connection; the receiver's event loop never waits for it, and SIGTERM stops it at once (a day
half made is simply made again next time).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from datetime import UTC, date, datetime, timedelta

from sitebeacon.collect.stores import Store, StoreError, open_store
from sitebeacon.errors import SitebeaconError
from sitebeacon.report.summary import VERSION, finished, summaries
from sitebeacon.report.workers import ignore_interrupts

log = logging.getLogger("sitebeacon.report")

FIRST_DELAY = 10.0
"""Seconds after start before the first pass (the receiver serves first)."""
INTERVAL = 3600.0
"""Seconds between passes: a day is finished once, so hourly is plenty."""
NICENESS = 10
"""How much lower the child's CPU priority is than the receiver's."""


def missing_days(store: Store, today: date | None = None) -> list[date]:
    """Finished days from the first record's day on that have no summary of this version."""
    today = today or datetime.now(UTC).date()
    ((first,),) = store.query("SELECT min(received_at) FROM records")
    if first is None:
        return []
    start = (
        first.astimezone(UTC).date()  # PostgreSQL: a timestamptz
        if isinstance(first, datetime)
        else date.fromisoformat(str(first)[:10])  # SQLite: the text form, in UTC
    )
    kept = {
        text
        for (text,) in store.query(
            "SELECT day FROM report_days WHERE version = ? AND length(day) = 10", [VERSION]
        )
    }
    days = []
    day = start
    while finished(day, today):
        if day.isoformat() not in kept:
            days.append(day)
        day += timedelta(days=1)
    return days


def keep_summaries(url: str, today: date | None = None) -> int:
    """Summarise (and store) each finished day that has none yet; returns how many were made."""
    store = open_store(url, create=False)
    try:
        days = missing_days(store, today)
        for day in days:
            summaries(store, [day])  # a finished day's summary is stored as it is made
        # The rollups a report merges (summary._spans): whole months, then Monday-Sunday weeks
        # (a 30-day window off the calendar month), each merged once here and kept.
        for month in sorted({day.replace(day=1) for day in days}):
            whole = [month + timedelta(days=n) for n in range(31)]
            _roll_up(store, [day for day in whole if day.month == month.month], today)
        for monday in sorted({day - timedelta(days=day.weekday()) for day in days}):
            _roll_up(store, [monday + timedelta(days=n) for n in range(7)], today)
        return len(days)
    finally:
        store.close()


def _roll_up(store: Store, span: list[date], today: date | None) -> None:
    if finished(span[-1], today):
        summaries(store, span)


def _child(url: str) -> None:
    """The child process's work: lower priority, one pass, errors logged (never raised)."""
    ignore_interrupts()
    logging.basicConfig(level=logging.WARNING, format="sitebeacon: %(message)s")
    try:
        os.nice(NICENESS)
        keep_summaries(url)
    except (SitebeaconError, StoreError, OSError) as error:
        log.warning("daily summaries not made: %s", error)


class SummaryKeeper:
    """A daemon thread that starts one summarising child process per pass (see the module)."""

    def __init__(self, url: str, *, first_delay: float = FIRST_DELAY, interval: float = INTERVAL):
        self.url = url
        self.first_delay = first_delay
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sitebeacon-summaries", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        # spawn: a fork of a process running uvloop and threads is not safe.
        context = multiprocessing.get_context("spawn")
        delay = self.first_delay
        while not self._stop.wait(delay):
            child = context.Process(target=_child, args=(self.url,), name="sitebeacon-summaries")
            child.start()
            while child.is_alive():
                if self._stop.wait(0.5):
                    child.terminate()  # the days it finished are kept; the rest wait
                    break
            child.join(timeout=5)
            delay = self.interval

    def stop(self) -> None:
        """Stop the thread and a pass in progress (at most a few seconds)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
