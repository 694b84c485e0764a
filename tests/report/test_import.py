"""`sitebeacon import`: export -> import -> export gives the same records, across stores."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import postgres_schema
from files import make_row

from sitebeacon.collect.stores import open_store
from sitebeacon.report.export import export_records
from sitebeacon.report.importer import import_lines

FIREFOX_ON_LINUX = {
    "visitor": "0123456789abcdef",
    "browser": "Firefox 128",
    "os": "Linux",
    "device": "desktop",
}
ROWS = [
    make_row(
        "p1", url="https://a.example/ü", referrer="https://g/", ts=1714564800123, **FIREFOX_ON_LINUX
    ),
    make_row(
        "l1",
        received_at="2024-05-01T12:00:09.999Z",
        type="leave",
        url="https://a.example/ü",
        transport="fetchlater",
        content_type="text/plain",
        fetch_mode="cors",
        seq=3,
        data='{"visible_ms":9000,"retried":1}',
        **FIREFOX_ON_LINUX,
    ),
    make_row(
        "b1",
        received_at="2024-05-02T00:00:00.000Z",
        transport=None,
        content_type=None,
        fetch_mode=None,
        bot=True,
    ),
    make_row(
        "c1",
        received_at="2024-05-02T01:00:00.000Z",
        type="signup",
        transport="keepalive",
        content_type="application/json",
        fetch_mode="cors",
        data='{"plan":"pro","n":[1,2.5,null]}',
    ),
]


def exported(url: str) -> str:
    out = io.StringIO()
    export_records(url, out)
    return out.getvalue()


def test_round_trip_sqlite_to_each_store(tmp_path: Path, store_url: str) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    with open_store(source) as store:
        store.add(ROWS)
    text = exported(source)
    with open_store(store_url) as store:
        result = import_lines(store, text.encode().splitlines())
    assert result.imported == len(ROWS) and result.bad == []
    assert exported(store_url) == text
    # ... and back again into a fresh SQLite file (PostgreSQL -> SQLite).
    back = f"sqlite:///{tmp_path / 'back.db'}"
    with open_store(back) as store:
        import_lines(store, exported(store_url).encode().splitlines())
    assert exported(back) == text


def test_dedup_bad_lines_and_old_lines(store_url: str) -> None:
    url = store_url
    old = {  # as export wrote it before visitor and client class existed
        "id": "old1",
        "received_at": "2024-04-01T00:00:00.000Z",
        "type": "pageview",
        "url": "https://a.example/",
        "referrer": None,
        "target": None,
        "transport": "beacon",
        "content_type": None,
        "fetch_mode": None,
        "seq": 0,
        "ts": None,
        "data": None,
        "bot": False,
    }
    lines = [
        json.dumps(old),
        "not json",
        json.dumps({**old, "id": "bad id!"}),
        json.dumps({**old, "received_at": "yesterday"}),
        "",
        json.dumps(old),  # the same id again: no second row
        json.dumps({**old, "id": "old2", "data": [1]}),
        json.dumps({**old, "id": "old3"}),
        json.dumps({**old, "seq": 2, "data": {"final": True}}),  # a later copy: its figures win
    ]
    with open_store(url) as store:
        result = import_lines(store, [line.encode() for line in lines])
        records = store.records()
    assert [number for number, _ in result.bad] == [2, 3, 4, 7]
    assert "received_at" in result.bad[2][1]
    assert [r["id"] for r in records] == ["old1", "old3"]
    assert records[0]["visitor"] is None and records[0]["browser"] is None
    assert (records[0]["seq"], records[0]["data"]) == (2, {"final": True})


def test_cli_import_reports_bad_lines_and_keeps_good_ones(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    with open_store(source) as store:
        store.add(ROWS)
    dump = tmp_path / "dump.jsonl"
    dump.write_text(exported(source) + "{broken\n")
    target = f"sqlite:///{tmp_path / 'target.db'}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run(
        [sys.executable, "-m", "sitebeacon", "import", "--db", target, str(dump)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"line {len(ROWS) + 1}: not JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert exported(target) == exported(source)
    with open_store(target) as store:  # the finished months it wrote into are summed up already
        days = [day for (day,) in store.query("SELECT day FROM report_days ORDER BY day")]
    assert days[:-1] == [f"2024-05-{n:02d}" for n in range(1, 32)]
    assert days[-1].startswith("2024-05~")  # and the month's rollup
    piped = subprocess.run(
        [
            sys.executable,
            "-m",
            "sitebeacon",
            "import",
            "--db",
            f"sqlite:///{tmp_path / 'p.db'}",
            "-",
        ],
        input=exported(source),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "sitebeacon", "import", "--db", target, str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


def test_import_drops_stale_summaries(tmp_path: Path) -> None:
    """A finished day's stored summary is remade after an import writes into that day."""
    from datetime import date

    from sitebeacon.report.aggregate import Period, build_report

    url = f"sqlite:///{tmp_path / 'r.db'}"
    day = Period(date(2024, 5, 1), date(2024, 5, 1))
    with open_store(url) as store:
        store.add(ROWS[:1])
        assert build_report(store, day)["pageviews"] == 1
        line = json.dumps({**json.loads(exported(url)), "id": "p2"})
        import_lines(store, [line.encode()])
        assert build_report(store, day)["pageviews"] == 2


@pytest.mark.parametrize("direction", ["sqlite->postgres"])
def test_migration_command_line(tmp_path: Path, direction: str) -> None:
    """The documented migration: `export --db sqlite... | import --db postgresql...`."""
    with postgres_schema() as pg:
        source = f"sqlite:///{tmp_path / 'source.db'}"
        with open_store(source) as store:
            store.add(ROWS)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        cli = f"{sys.executable} -m sitebeacon"
        subprocess.run(
            f"{cli} export --db '{source}' | {cli} import --db '{pg}' -",
            shell=True,
            check=True,
            env=env,
            timeout=120,
            capture_output=True,
        )
        assert exported(pg) == exported(source)
