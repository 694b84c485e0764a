"""`export` and `stats` on records stored by the real stores."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sitebeacon.collect.stores import open_store
from sitebeacon.collect.types import Row
from sitebeacon.errors import SitebeaconError
from sitebeacon.report.export import export_records
from sitebeacon.report.stats import compute_stats, format_stats, stats_json

HOME = "https://site.example/"
ABOUT = "https://site.example/about"


def row(record_id: str, kind: str, url: str, **fields: Any) -> Row:
    return Row(
        id=record_id,
        received_at="2024-05-01T12:00:00.000Z",
        type=kind,
        url=url,
        referrer=fields.get("referrer"),
        target=fields.get("target"),
        transport=fields.get("transport", "beacon"),
        content_type="text/plain",
        fetch_mode="no-cors",
        seq=0,
        ts=fields.get("ts"),
        data=fields.get("data"),
        bot=fields.get("bot", False),
    )


@pytest.fixture
def filled(store_url: str) -> str:
    with open_store(store_url) as store:
        store.add(
            [
                row("p1", "pageview", HOME, ts=1),
                row("p2", "pageview", HOME + "#top", transport="fetchlater"),
                row("p3", "pageview", ABOUT, transport="keepalive"),
                row("l1", "leave", HOME, data='{"visible_ms":1000}', transport="fetchlater"),
                row("l2", "leave", HOME, data='{"visible_ms":3000}', transport="fetchlater"),
                row("l3", "leave", HOME, data='{"visible_ms":2000}'),
                row("l4", "leave", ABOUT, data='{"other":1}'),
                row("o1", "outbound", HOME, target="https://a.example/", transport="ping"),
                row("o2", "outbound", HOME, target="https://a.example/", transport="ping"),
                row("o3", "outbound", ABOUT, target="https://b.example/", transport=None),
                row("c1", "signup", ABOUT, data='{"plan":"free"}'),
                row("bot1", "pageview", HOME, bot=True),
                row("bot2", "leave", HOME, data='{"visible_ms":999999}', bot=True),
            ]
        )
    return store_url


def test_export_writes_json_lines(filled: str) -> None:
    out = io.StringIO()
    assert export_records(filled, out) == 13
    lines = out.getvalue().splitlines()
    assert len(lines) == 13
    records = [json.loads(line) for line in lines]
    for record in records:
        assert {"id", "type", "url", "transport", "received_at", "data"} <= set(record)
    by_id = {record["id"]: record for record in records}
    assert by_id["l1"]["data"] == {"visible_ms": 1000}
    assert by_id["o1"]["target"] == "https://a.example/"
    assert by_id["bot1"]["bot"] is True  # export keeps everything; only stats leave bots out
    assert by_id["p1"]["received_at"] == "2024-05-01T12:00:00.000Z"


def test_stats_counts_pages_leaves_outbound_and_transports(filled: str) -> None:
    stats = compute_stats(filled, include_bots=False)
    assert stats.records == 11
    assert stats.bots_left_out == 2
    home, about = stats.pages[HOME], stats.pages[ABOUT]
    assert (home.pageviews, home.leaves, home.outbound) == (2, 3, 2)  # #top is the same page
    assert home.median_visible_ms == 2000
    assert home.outbound_targets == {"https://a.example/": 2}
    assert (about.pageviews, about.leaves, about.outbound) == (1, 1, 1)
    assert about.median_visible_ms is None  # a leave without visible_ms is counted, not timed
    assert stats.outbound_targets == {"https://a.example/": 2, "https://b.example/": 1}
    assert stats.transports == {
        "beacon": 4,
        "fetchlater": 3,
        "ping": 2,
        "keepalive": 1,
        "unknown": 1,
    }
    assert stats.types["signup"] == 1
    assert list(stats.pages) == [HOME, ABOUT]  # most viewed first


def test_stats_with_bots(filled: str) -> None:
    stats = compute_stats(filled, include_bots=True)
    assert stats.records == 13
    assert stats.bots_left_out == 0
    assert stats.pages[HOME].pageviews == 3
    assert stats.pages[HOME].median_visible_ms == 2500  # median of 1000, 2000, 3000, 999999


def test_stats_json_round_trips(filled: str) -> None:
    data = json.loads(stats_json(compute_stats(filled, include_bots=False)))
    assert data["pages"][HOME]["median_visible_ms"] == 2000
    assert data["transports"]["ping"] == 2
    assert data["bots_left_out"] == 2


def test_format_stats_text(filled: str) -> None:
    text = format_stats(compute_stats(filled, include_bots=False))
    assert text.startswith("11 records (2 from bots left out")
    home_line = next(line for line in text.splitlines() if line.startswith(HOME + " "))
    assert home_line.split()[1:] == ["2", "3", "2.0s", "2"]
    assert "transport mix" in text
    assert "https://a.example/" in text


def test_empty_database(store_url: str) -> None:
    open_store(store_url).close()
    stats = compute_stats(store_url, include_bots=False)
    assert stats.records == 0
    assert format_stats(stats) == "0 records\n"
    out = io.StringIO()
    assert export_records(store_url, out) == 0
    assert out.getvalue() == ""


def test_missing_sqlite_file_is_an_error_not_a_new_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nope.db'}"
    with pytest.raises(SitebeaconError, match="no database"):
        compute_stats(url, include_bots=False)
    with pytest.raises(SitebeaconError, match="no database"):
        export_records(url, io.StringIO())
    assert not (tmp_path / "nope.db").exists()


@pytest.mark.parametrize("command", ["export", "stats"])
def test_cli_missing_database_is_one_line_exit_2(tmp_path: Path, command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sitebeacon.cli", command, "--db", f"sqlite:///{tmp_path}/x.db"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("sitebeacon: no database at")


def test_cli_export_and_stats_json(filled: str) -> None:
    export = subprocess.run(
        [sys.executable, "-m", "sitebeacon.cli", "export", "--db", filled],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert len(export.stdout.splitlines()) == 13
    stats = subprocess.run(
        [
            sys.executable,
            "-m",
            "sitebeacon.cli",
            "stats",
            "--db",
            filled,
            "--json",
            "--include-bots",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(stats.stdout)["records"] == 13


def test_stats_count_downloads_and_records_retried_from_the_client_queue(store_url: str) -> None:
    with open_store(store_url) as store:
        store.add(
            [
                row("d1", "download", HOME, target=HOME + "a.pdf", data='{"retried":1}'),
                row("p1", "pageview", HOME, data='{"retried":1,"dropped":2}'),
                row("p2", "pageview", HOME),
                row("l1", "leave", HOME, data='{"visible_ms":5,"retried":0}'),
            ]
        )
    stats = compute_stats(store_url, include_bots=False)
    assert stats.types["download"] == 1 and stats.retried == 2
    assert "records retried from the client queue: 2" in format_stats(stats)
