"""`sitebeacon verify`: what each configuration promises, how a report judges the store, and the
command itself on a built sample site in real Chromium."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from files import REPO, SAMPLE, run_cli, write

from sitebeacon.config import Config
from sitebeacon.errors import SitebeaconError
from sitebeacon.proof.engines import ENGINES
from sitebeacon.proof.engines.chromium import find_browser
from sitebeacon.proof.scenarios import SCENARIOS
from sitebeacon.proof.verify import (
    ALL_SCENARIOS,
    Expected,
    ScenarioResult,
    VerifyReport,
    compare,
    expected_records,
    plan_site,
    url_path,
)
from sitebeacon.site.build import build_site
from sitebeacon.site.generate import build_module
from sitebeacon.site.inject import inject_site


def by_type(expected: list[Expected]) -> dict[str, Expected]:
    return {item.type: item for item in expected}


def row(type_: str, transport: str = "beacon", **fields: Any) -> dict[str, Any]:
    return {
        "id": fields.pop("id", type_),
        "type": type_,
        "transport": transport,
        "seq": 0,
        "url": "http://x/",
        "content_type": None,
        "fetch_mode": None,
        "target": None,
        "data": None,
        **fields,
    }


# --- expected records ----------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ALL_SCENARIOS)
def test_default_config_expects_a_view_and_a_leave_for_every_visit(scenario: int) -> None:
    expected = by_type(expected_records(Config(), scenario))
    visits = 2 if scenario in (4, 7) else 1
    assert expected["pageview"] == Expected("pageview", visits)
    assert expected["leave"] == Expected("leave", visits)
    assert ("outbound" in expected) == (scenario == 2)


@pytest.mark.parametrize("transport", [("beacon",), ("keepalive",), ("beacon", "keepalive")])
@pytest.mark.parametrize("scenario", [8, 9])
def test_crash_and_closed_browser_promise_a_leave_only_when_fetchlater_arms_it(
    transport: tuple[str, ...], scenario: int
) -> None:
    leave = by_type(expected_records(Config(transport=transport), scenario))["leave"]
    assert not leave.required
    assert "fetchlater" in leave.why
    for listed in (("fetchlater", "beacon"), ("beacon", "fetchlater"), ("keepalive", "fetchlater")):
        armed = by_type(expected_records(Config(transport=listed), scenario))
        assert armed["leave"].required


def test_page_events_not_configured_are_not_expected() -> None:
    assert expected_records(Config(events=("leave",)), 1) == [Expected("leave", 1)]
    assert expected_records(Config(events=("pageview",)), 2) == [Expected("pageview", 1)]
    assert expected_records(Config(events=()), 5) == []


def test_ping_links_turn_the_click_record_into_the_browsers_ping() -> None:
    outbound = Config(ping_links="outbound")
    assert by_type(expected_records(outbound, 2))["outbound"] == Expected(
        "outbound", 1, transport="ping"
    )
    assert "outbound" not in by_type(expected_records(outbound, 1))
    every = Config(ping_links="all", events=("pageview", "leave"))
    for scenario in (1, 2, 7):
        assert by_type(expected_records(every, scenario))["outbound"].transport == "ping"
    # What the page really carries wins over the configuration.
    assert "outbound" not in by_type(expected_records(every, 1, link_has_ping=False))
    assert by_type(expected_records(Config(), 2, link_has_ping=True))["outbound"].transport == (
        "ping"
    )


def test_the_registry_is_one_ordered_list() -> None:
    assert tuple(range(1, 10)) == ALL_SCENARIOS
    assert [s.number for s in SCENARIOS] == list(ALL_SCENARIOS)
    for item in SCENARIOS:
        assert set(item.cannot) <= set(ENGINES), item
        assert all(why for why in item.cannot.values()), item
    assert [s.number for s in SCENARIOS if s.dead_page] == [8, 9]
    assert {s.number: s.visits for s in SCENARIOS if s.visits > 1} == {4: 2, 7: 2}


@pytest.mark.parametrize("engine", ["firefox", "webkit"])
def test_without_fetchlater_crash_and_close_are_not_promised(engine: str) -> None:
    for scenario in (8, 9):
        leave = by_type(expected_records(Config(), scenario, engine=engine))["leave"]
        assert not leave.required
        assert "no fetchLater" in leave.why
    # Everything else is, by the transports the engine has.
    assert by_type(expected_records(Config(), 5, engine=engine))["leave"].required


@pytest.mark.parametrize("engine", ["firefox", "webkit"])
def test_only_transports_the_engine_lacks_promise_nothing(engine: str) -> None:
    expected = expected_records(Config(transport=("fetchlater",)), 1, engine=engine)
    assert expected and not any(item.required for item in expected)
    assert all("none of the configured transports" in item.why for item in expected)
    keepalive = expected_records(Config(transport=("fetchlater", "keepalive")), 1, engine=engine)
    assert all(item.required for item in keepalive)


def test_pings_are_promised_where_the_engine_sends_them() -> None:
    config = Config(ping_links="outbound")
    for engine in ("chromium", "webkit"):
        assert by_type(expected_records(config, 2, engine=engine))["outbound"].required
    firefox = by_type(expected_records(config, 2, engine="firefox"))["outbound"]
    assert not firefox.required and "send_pings" in firefox.why


def test_unknown_scenario_is_an_error() -> None:
    with pytest.raises(ValueError):
        expected_records(Config(), 10)


# --- judging the stored rows ---------------------------------------------------------------


def test_compare_finds_missing_records() -> None:
    expected = [Expected("pageview", 1), Expected("leave", 2)]
    missing, duplicates, unexpected = compare(expected, [row("pageview"), row("leave")])
    assert missing == ["leave (1 of 2)"]
    assert duplicates == unexpected == []


def test_compare_counts_extra_rows_of_one_visit_as_duplicates() -> None:
    expected = [Expected("leave", 1)]
    rows = [row("leave", "fetchlater", id="a"), row("leave", "beacon", id="b")]
    missing, duplicates, _ = compare(expected, rows)
    assert missing == []
    assert duplicates == ["leave: 2 rows for 1 (fetchlater, beacon)"]


def test_compare_does_not_require_what_is_not_promised() -> None:
    expected = [Expected("pageview", 1), Expected("leave", 1, required=False, why="no")]
    assert compare(expected, [row("pageview")]) == ([], [], [])
    assert compare(expected, [row("pageview"), row("leave")]) == ([], [], [])


def test_compare_checks_the_transport_when_one_is_promised() -> None:
    expected = [Expected("outbound", 1, transport="ping")]
    missing, duplicates, _ = compare(expected, [row("outbound", "beacon")])
    assert missing == ["outbound/ping (0 of 1)"]
    # The module must not send its own outbound record for a link the browser pings.
    _, duplicates, _ = compare(expected, [row("outbound", "ping"), row("outbound", "beacon")])
    assert duplicates == ["outbound: 2 rows for 1 (ping, beacon)"]


def test_compare_reports_records_of_types_nobody_expected() -> None:
    _, _, unexpected = compare([Expected("leave", 1)], [row("leave"), row("outbound")])
    assert unexpected == ["outbound/beacon"]


def make_report(results: list[ScenarioResult]) -> VerifyReport:
    return VerifyReport(
        "site", Config(), "/usr/bin/chromium", None, "http://127.0.0.1:1/collect", scenarios=results
    )


def test_report_fails_on_a_missing_record_and_says_which() -> None:
    good = ScenarioResult(1, "one", "u1", [Expected("leave", 1)], stored=[row("leave")])
    bad = ScenarioResult(5, "five", "u5", [Expected("leave", 1)], missing=["leave (0 of 1)"])
    report = make_report([good, bad])
    assert not report.ok
    text = report.table()
    assert "leave (0 of 1)" in text
    assert "FAILED: scenario(s) 5 of 2" in text
    data = json.loads(report.to_json())
    assert data["ok"] is False
    assert [s["ok"] for s in data["scenarios"]] == [True, False]
    assert data["scenarios"][0]["stored"][0]["type"] == "leave"


def test_report_is_ok_when_only_unpromised_records_are_missing() -> None:
    optional = Expected("leave", 1, required=False, why="needs fetchlater among the transports")
    result = ScenarioResult(
        8, "crash", "u8", [Expected("pageview", 1), optional], stored=[row("pageview")]
    )
    report = make_report([result])
    assert report.ok
    assert "needs fetchlater among the transports" in report.table()


def test_page_errors_fail_a_scenario() -> None:
    result = ScenarioResult(1, "one", "u", [], page_errors=["TypeError: x"])
    assert not result.ok


# --- the site ------------------------------------------------------------------------------


def test_plan_starts_on_a_page_with_both_kinds_of_link(tmp_path: Path) -> None:
    write(tmp_path / "index.html", '<a href="/b/">b</a>')
    write(tmp_path / "b/index.html", '<a href="/">home</a> <a href="https://example.org/">x</a>')
    inject_site(tmp_path, Config(), build_module(Config()))
    plan, start = plan_site(tmp_path)
    assert (plan.start_path, plan.other_path) == ("/b/", "/")
    assert plan.internal_href == "/"
    assert plan.outbound_href == "https://example.org/"
    assert start.injected


def test_plan_needs_an_injected_site(tmp_path: Path) -> None:
    write(tmp_path / "index.html", '<a href="/b.html">b</a>')
    write(tmp_path / "b.html", "b")
    with pytest.raises(SitebeaconError, match="sitebeacon inject"):
        plan_site(tmp_path)


def test_url_paths_are_what_a_static_server_serves(tmp_path: Path) -> None:
    assert url_path(tmp_path, tmp_path / "index.html") == "/"
    assert url_path(tmp_path, tmp_path / "a/index.html") == "/a/"
    assert url_path(tmp_path, tmp_path / "a/b.html") == "/a/b.html"


def test_no_browser_on_path_says_how_to_install_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SitebeaconError, match="apt-get install chromium"):
        find_browser()
    with pytest.raises(SitebeaconError, match="no such executable"):
        find_browser(str(tmp_path / "nonexistent"))


# --- the command ---------------------------------------------------------------------------


def sitebeacon(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=REPO, timeout=600)


@pytest.fixture(scope="module")
def sample_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("verify") / "site"
    build_site(SAMPLE, out, Config())
    return out


def test_throttle_outside_chromium_is_one_line_and_status_2(sample_build: Path) -> None:
    result = sitebeacon("verify", str(sample_build), "--engine", "firefox", "--throttle", "slow3g")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "chromium only" in result.stderr and "Traceback" not in result.stderr


def test_missing_browser_is_one_line_and_status_2(sample_build: Path) -> None:
    result = sitebeacon("verify", str(sample_build), "--browser", "/nonexistent")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "/nonexistent" in lines[0]
    assert "Traceback" not in result.stderr


def verify_ok(site: Path, chromium: str, config: Path, *extra: str) -> str:
    """`sitebeacon verify SITE` with `chromium` and `config`; it must succeed; its stdout."""
    result = sitebeacon("verify", str(site), "--browser", chromium, "--config", str(config), *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_verify_on_the_built_sample_site(chromium: str, sample_build: Path) -> None:
    report = json.loads(verify_ok(sample_build, chromium, SAMPLE / "sitebeacon.toml", "--json"))
    assert report["ok"] is True
    assert [s["number"] for s in report["scenarios"]] == list(ALL_SCENARIOS)
    for scenario in report["scenarios"]:
        leaves = [r for r in scenario["stored"] if r["type"] == "leave"]
        visits = 2 if scenario["number"] in (4, 7) else 1
        assert len(leaves) == visits, scenario
        assert all(r["data"]["visible_ms"] >= 0 for r in leaves)
        assert scenario["page_errors"] == []


def test_verify_with_beacon_only_does_not_count_crash_and_close(
    chromium: str, tmp_path: Path
) -> None:
    (tmp_path / "beacon.toml").write_text('transport = ["beacon"]\n')
    config = Config(transport=("beacon",))
    build_site(SAMPLE, tmp_path / "site", config)
    report = json.loads(verify_ok(tmp_path / "site", chromium, tmp_path / "beacon.toml", "--json"))
    scenarios = {s["number"]: s for s in report["scenarios"]}
    for number in (8, 9):
        leave = next(e for e in scenarios[number]["expected"] if e["type"] == "leave")
        assert leave["required"] is False
        assert "fetchlater" in leave["why"]
        assert scenarios[number]["ok"] is True
    for number in (1, 2, 3, 5, 6):
        assert [r["transport"] for r in scenarios[number]["stored"] if r["type"] == "leave"] == [
            "beacon"
        ]


def test_verify_table_and_absolute_endpoint(chromium: str, tmp_path: Path) -> None:
    """An absolute endpoint is re-pointed at verify's own receiver, and the report says so."""
    (tmp_path / "abs.toml").write_text('endpoint = "https://stats.example.org/collect"\n')
    build_site(SAMPLE, tmp_path / "site", Config(endpoint="https://stats.example.org/collect"))
    output = verify_ok(tmp_path / "site", chromium, tmp_path / "abs.toml")
    assert "re-injected with endpoint /collect" in output
    assert output.rstrip().endswith("9 of 9 scenarios delivered what the configuration promises")


@pytest.mark.parametrize("engine", ["firefox", "webkit"])
def test_verify_in_another_engine(
    request: pytest.FixtureRequest, engine: str, tmp_path: Path
) -> None:
    """`--engine firefox|webkit` drives all nine scenarios there; without fetchLater a crash
    and a closed browser are not promised, and the report says why."""
    request.getfixturevalue(engine)  # skips, or fails under CI=true, when the engine is missing
    build_site(SAMPLE, tmp_path / "site", Config())
    result = sitebeacon(
        "verify", str(tmp_path / "site"), "--config", str(SAMPLE / "sitebeacon.toml"),
        "--engine", engine, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["engine"] == engine
    assert [s["number"] for s in report["scenarios"]] == list(ALL_SCENARIOS)
    assert report["not_driven"] == []
    for scenario in report["scenarios"]:
        leaves = [r for r in scenario["stored"] if r["type"] == "leave"]
        assert {r["transport"] for r in leaves} <= {"beacon"}, scenario
        if scenario["number"] == 8:  # a crash runs no page event: nothing was armed
            assert leaves == []
            why = next(e["why"] for e in scenario["expected"] if e["type"] == "leave")
            assert "no fetchLater" in why


def test_a_scenario_an_engine_cannot_drive_is_reported_with_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import replace

    from sitebeacon.proof import scenarios, verify

    item = replace(scenarios.BY_NUMBER[6], cannot={"webkit": "no second tab can come in front"})
    monkeypatch.setitem(scenarios.BY_NUMBER, 6, item)
    assert verify.not_driven("webkit", ALL_SCENARIOS) == {6: "no second tab can come in front"}
    assert verify.not_driven("chromium", ALL_SCENARIOS) == {}
    report = make_report([ScenarioResult(5, "five", "u5", [])])
    report.engine, report.not_driven = "webkit", verify.not_driven("webkit", ALL_SCENARIOS)
    assert report.ok
    assert "6: not driven in webkit: no second tab can come in front" in report.table()
    assert "(1 not driven)" in report.table()
    data = json.loads(report.to_json())
    assert data["engine"] == "webkit"
    assert data["not_driven"] == [
        {"number": 6, "name": item.name, "why": "no second tab can come in front"}
    ]
