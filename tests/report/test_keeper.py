"""Daily summaries made beside the receiver (report/keeper.py), on both stores."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from files import make_row, start_receiver

from sitebeacon.collect.stores import open_store
from sitebeacon.collect.types import Row
from sitebeacon.report.aggregate import Period, build_report
from sitebeacon.report.keeper import SummaryKeeper, keep_summaries, missing_days

RECEIVE = [sys.executable, "-m", "sitebeacon.cli", "receive"]


def row(record_id: str, day: date, kind: str = "pageview") -> Row:
    data = '{"visible_ms":5000}' if kind == "leave" else None
    return make_row(record_id, received_at=f"{day}T12:00:00.000Z", type=kind, data=data)


def kept_days(url: str) -> list[str]:
    with open_store(url) as store:
        return sorted(
            day for (day,) in store.query("SELECT day FROM report_days WHERE length(day) = 10")
        )


WEEKS_OF_MAY = ("05-06", "05-13", "05-20")  # 05-27 runs to 06-02: not over


def rollups(url: str) -> list[str]:
    with open_store(url) as store:
        return sorted(
            day.partition("~")[0]
            for (day,) in store.query("SELECT day FROM report_days WHERE length(day) > 10")
        )


def month_rollups(url: str) -> list[str]:
    return [key for key in rollups(url) if not key.endswith("w")]


def week_rollups(url: str) -> list[str]:
    return [key for key in rollups(url) if key.endswith("w")]


def test_whole_finished_months_get_their_rollup(store_url: str) -> None:
    with open_store(store_url) as store:
        store.add([row("a", date(2024, 4, 30)), row("b", date(2024, 5, 31))])
    # Finished on 06-02: up to 05-31. April's days before the first row are empty, and kept.
    assert keep_summaries(store_url, date(2024, 6, 2)) == 32
    assert month_rollups(store_url) == ["2024-04", "2024-05"]
    # and the weeks, Monday to Sunday, of those days that are over (04-29 to 05-26)
    assert week_rollups(store_url) == [f"2024-{day}w" for day in ("04-29", *WEEKS_OF_MAY)]
    with open_store(store_url) as store:
        whole = Period(date(2024, 4, 1), date(2024, 5, 31))
        assert build_report(store, whole)["pageviews"] == 2


def old_days(url: str) -> int:
    """Kept summaries of 2024 days (the dashboard keeps those of recent empty days too)."""
    return sum(day.startswith("2024") for day in kept_days(url))


def test_finished_days_are_summarised_once_and_again_after_a_change(store_url: str) -> None:
    today = date(2024, 5, 6)  # finished: up to 05-04 (yesterday, 05-05, may still change)
    with open_store(store_url) as store:
        store.add([row("a", date(2024, 5, 1)), row("b", date(2024, 5, 1), "leave")])
        store.add([row("c", date(2024, 5, 3)), row("d", today - timedelta(days=1))])
        period = Period(date(2024, 5, 1), today)
        before = build_report(store, period)  # made from the rows (nothing kept for it... yet)
        store.drop_summaries([day for (day,) in store.query("SELECT day FROM report_days")])
        assert missing_days(store, today) == [date(2024, 5, d) for d in (1, 2, 3, 4)]
    assert keep_summaries(store_url, today) == 4
    assert kept_days(store_url) == ["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04"]
    assert month_rollups(store_url) == []  # May is not over on 05-06
    assert keep_summaries(store_url, today) == 0  # nothing left to do
    with open_store(store_url) as store:
        assert build_report(store, period) == before  # the kept summaries say the same
        # A leave re-sent with a later seq updates its row: that day's summary is dropped.
        store.add([row("b", date(2024, 5, 1), "leave")._replace(seq=1, data='{"visible_ms":1}')])
        assert missing_days(store, today) == [date(2024, 5, 1)]
    assert keep_summaries(store_url, today) == 1


def test_an_empty_store_has_nothing_to_summarise(store_url: str) -> None:
    open_store(store_url).close()  # made by the receiver beside the keeper
    assert keep_summaries(store_url) == 0
    assert kept_days(store_url) == []


def test_the_keeper_works_in_a_child_process_and_stops_promptly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    old = datetime.now(UTC).date() - timedelta(days=3)
    with open_store(url) as store:
        store.add([row("a", old), row("b", old, "leave")])
    keeper = SummaryKeeper(url, first_delay=0.1)
    keeper.start()
    try:
        deadline = time.monotonic() + 60
        while old.isoformat() not in kept_days(url) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        started = time.monotonic()
        keeper.stop()
    assert time.monotonic() - started < 10
    assert not keeper._thread.is_alive()
    assert old.isoformat() in kept_days(url)


def test_sitebeacon_receive_keeps_the_summaries(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    old = datetime.now(UTC).date() - timedelta(days=2)
    with open_store(url) as store:
        store.add([row("a", old), row("b", old - timedelta(days=1))])
    process, _ = start_receiver(url)
    try:
        deadline = time.monotonic() + 90  # the first pass starts 10 s after the receiver
        while len(kept_days(url)) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert kept_days(url) == [(old - timedelta(days=1)).isoformat(), old.isoformat()]
    assert process.returncode == 0


def test_ctrl_c_stops_the_receiver_and_its_helpers_without_a_traceback(tmp_path: Path) -> None:
    # Ctrl-C in a terminal signals the whole process group: the keeper's child (busy with 400
    # days here) and the dashboard's worker must leave quietly with the receiver.
    url = f"sqlite:///{tmp_path / 'c.db'}"
    first = date(2024, 1, 1)
    with open_store(url) as store:
        store.add([row(f"r{n}", first + timedelta(days=n % 400)) for n in range(8000)])
    process = subprocess.Popen(
        [*RECEIVE, "--db", url, "--port", "0", "--dashboard-token", "secret"],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's job is
    )
    assert process.stderr is not None
    try:
        base = re.search(r"http://127\.0\.0\.1:\d+", process.stderr.readline())
        assert base is not None
        answer = httpx.get(f"{base.group(0)}/dashboard?token=secret", timeout=60)
        assert answer.status_code == 200  # its worker process is up
        deadline = time.monotonic() + 60
        while not (kept := old_days(url)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 0 < kept < 400  # the keeper's pass is under way
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    errors = process.stderr.read()
    assert "Traceback" not in errors, errors
    assert "KeyboardInterrupt" not in errors, errors
