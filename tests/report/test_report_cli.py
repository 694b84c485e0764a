"""`sitebeacon report` from the command line: formats, defaults and one-line errors."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from files import make_row
from files import run_cli as run

from sitebeacon.collect.stores import open_store
from sitebeacon.report.render import parse_period


def fill(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    today = datetime.now(UTC)
    rows = [
        make_row(
            f"p{n}",
            received_at=(today - timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            content_type=None,
            fetch_mode=None,
            bot=n == 3,
        )
        for n in range(40)
    ]
    with open_store(url) as store:
        store.add(rows)
    return url


def test_defaults_json_csv_html(tmp_path: Path) -> None:
    url = fill(tmp_path)
    result = run("report", "--db", url, "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pageviews"] == 29  # the last 30 days, one a day, the bot's left out
    assert report["quality"]["bots_left_out"] == 1
    assert len(report["daily"]) == 30 and report["until"] == datetime.now(UTC).date().isoformat()
    with_bots = json.loads(
        run("report", "--db", url, "--format", "json", "--include-bots", cwd=tmp_path).stdout
    )
    assert with_bots["pageviews"] == 30
    assert run("report", "--db", url, cwd=tmp_path).returncode == 0
    html = (tmp_path / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "data:text/csv" in html
    assert run("report", "--db", url, "--format", "csv", "-o", "out", cwd=tmp_path).returncode == 0
    assert (tmp_path / "out" / "pages.csv").read_text().startswith("url,pageviews,")
    assert (
        run("report", "--db", url, "--format", "csv", "-o", "r.zip", cwd=tmp_path).returncode == 0
    )
    with zipfile.ZipFile(tmp_path / "r.zip") as archive:
        assert "daily.csv" in archive.namelist()


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    url = fill(tmp_path)
    for args in (["--since", "May 1"], ["--since", "2024-05-02", "--until", "2024-05-01"]):
        result = run("report", "--db", url, *args, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    missing = run("report", "--db", f"sqlite:///{tmp_path / 'none.db'}", cwd=tmp_path)
    assert missing.returncode == 2 and "no database" in missing.stderr


def test_period_defaults() -> None:
    period = parse_period(None, "2024-03-01")
    assert (period.since.isoformat(), period.days) == ("2024-02-01", 30)  # 2024 is a leap year
    previous = period.previous()
    assert previous.since.weekday() == period.since.weekday() and previous.days == 30
