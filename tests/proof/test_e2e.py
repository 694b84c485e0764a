"""End to end: built sample sites, real Chromium, real receivers, real SQLite files.

Every assertion is about what the receiver stored (`open_store(...).records()`), never about
what the browser says it sent: Chromium lists requests that never reached a server and does
not list fetchLater requests at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import itertools
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from files import SAMPLE, write

from sitebeacon.collect.server import running_receiver
from sitebeacon.collect.stores import open_store
from sitebeacon.config import Config
from sitebeacon.proof.engines import ENGINES, FEATURES, make_engine
from sitebeacon.proof.engines.base import Outcome, Ready, SitePlan, Tab
from sitebeacon.proof.scenarios import BY_NUMBER, Scenario
from sitebeacon.proof.verify import (
    ALL_SCENARIOS,
    MARK_PARAM,
    ScenarioResult,
    link_pings,
    plan_site,
    run_scenarios,
)
from sitebeacon.site.build import build_site
from sitebeacon.site.generate import build_module
from sitebeacon.site.inject import inject_site

# What Chromium really puts on the wire for each way of sending, as the receiver stored it:
# (transport, encoding) -> (Content-Type, Sec-Fetch-Mode). Measured with Chromium 156; the same
# for a receiver on the page's origin and on another one (CORS decides whether the request may
# be made, not how it looks). sendBeacon with a string or URLSearchParams is a no-cors request;
# with an application/json Blob it is a CORS request (preflighted cross-origin). fetch with
# keepalive and fetchLater default to mode "cors". <a ping> is the browser's own no-cors POST.
WIRE: dict[tuple[str, str], tuple[str, str]] = {
    ("fetchlater", "text"): ("text/plain;charset=UTF-8", "cors"),
    ("beacon", "text"): ("text/plain;charset=UTF-8", "no-cors"),
    ("keepalive", "text"): ("text/plain;charset=UTF-8", "cors"),
    ("fetchlater", "json"): ("application/json", "cors"),
    ("beacon", "json"): ("application/json", "cors"),
    ("keepalive", "json"): ("application/json", "cors"),
    ("fetchlater", "form"): ("application/x-www-form-urlencoded;charset=UTF-8", "cors"),
    ("beacon", "form"): ("application/x-www-form-urlencoded;charset=UTF-8", "no-cors"),
    ("keepalive", "form"): ("application/x-www-form-urlencoded;charset=UTF-8", "cors"),
    ("ping", "text"): ("text/ping", "no-cors"),
    ("ping", "json"): ("text/ping", "no-cors"),
    ("ping", "form"): ("text/ping", "no-cors"),
}

FAST = (1, 2, 5, 6, 7, 8)  # every kind of leave, for the cases that need not run all nine


@dataclass
class Run:
    config: Config
    results: list[ScenarioResult]
    rows: list[dict[str, Any]]  # everything the collecting receiver stored
    site_origin: str
    collector: str


@contextlib.contextmanager
def served(
    tmp_path: Path, origin: str | None = None, allowed: bool = True
) -> Iterator[tuple[Path, str, str, str]]:
    """(site dir, site base URL, endpoint, collecting DB URL): the site served on one loopback
    port; with `origin="other"` the records go to a receiver on a second port."""
    site = tmp_path / "site"
    site.mkdir()
    collect_db = f"sqlite:///{tmp_path / 'collect.db'}"
    site_db = f"sqlite:///{tmp_path / 'site.db'}" if origin else collect_db
    with running_receiver(site_db, site_dir=site) as base, contextlib.ExitStack() as stack:
        endpoint = "/collect"
        if origin:
            other = stack.enter_context(
                running_receiver(collect_db, allow_origins=[base] if allowed else [])
            )
            endpoint = f"{other}/collect"
        yield site, base, endpoint, collect_db


def drive(
    chromium: str | None,
    tmp_path: Path,
    scenarios: tuple[int, ...] = ALL_SCENARIOS,
    *,
    engine: str = "chromium",
    origin: str | None = None,
    allowed: bool = True,
    timeout: float = 10,
    then: Callable[[Run], None] | None = None,
    **settings: Any,
) -> Run:
    """Serve a sample site built with `settings`, run `scenarios`, and call `then` with the
    result while the receivers still run."""
    with served(tmp_path, origin, allowed) as (site, base, endpoint, collect_db):
        # The scenarios are told apart by a query parameter: the module must keep it.
        settings.setdefault("keep_query", (*Config().keep_query, MARK_PARAM))
        config = Config(endpoint=endpoint, **settings)
        build_site(SAMPLE, site, config)
        plan, start = plan_site(site)
        plan = replace(plan, base=base)
        with open_store(collect_db) as store:
            results = asyncio.run(
                run_scenarios(
                    plan,
                    config,
                    store.records,
                    engine=engine,
                    browser=chromium,
                    scenarios=scenarios,
                    ping_on=link_pings(start, plan),
                    timeout=timeout,
                )
            ).results
            run = Run(config, results, store.records(), base, endpoint)
        if then is not None:
            then(run)
    return run


def assert_delivered(run: Run) -> None:
    """Every scenario stored exactly what the configuration promises, without page errors."""
    for result in run.results:
        summary = result.to_dict()
        assert result.failures == [], summary
        assert result.missing == [], summary
        assert result.duplicates == [], summary
        assert result.unexpected == [], summary
        assert result.page_errors == [], summary
        assert result.console_errors == [], summary


def assert_wire(run: Run) -> None:
    """The transport each record names matches what the receiver saw on the wire."""
    for row in run.rows:
        want = WIRE[(row["transport"], run.config.encoding)]
        assert (row["content_type"], row["fetch_mode"]) == want, row


def transports(run: Run, type_: str) -> set[str]:
    return {row["transport"] for row in run.rows if row["type"] == type_}


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(engine, Chromium's executable or None), for each engine this suite proves delivery in;
    a missing browser skips, or fails under CI=true (conftest `require`)."""
    found = request.getfixturevalue(request.param)
    return request.param, found if request.param == "chromium" else None


# Each transport alone, and the default order.
ORDERS: dict[str, tuple[str, ...]] = {
    "fetchlater": ("fetchlater",),
    "beacon": ("beacon",),
    "keepalive": ("keepalive",),
    "default": Config().transport,
}


def assert_only_queued(rows: list[dict[str, Any]]) -> None:
    """With no usable transport the module sends nothing at once: whatever was stored came from
    its localStorage queue on a later load (`data.retried`, one keepalive array body), once."""
    for row in rows:
        assert (row["data"] or {}).get("retried") and row["transport"] == "keepalive", row
    assert len({row["id"] for row in rows}) == len(rows)


@pytest.mark.parametrize("order", ORDERS)
def test_full_page_navigation(engine: tuple[str, str | None], tmp_path: Path, order: str) -> None:
    """Scenarios 1-9 in each engine: what its features promise arrives, once, as it says."""
    name, chromium = engine
    run = drive(chromium, tmp_path, engine=name, transport=ORDERS[order])
    assert_delivered(run)
    features = FEATURES[name]
    usable = [t for t in run.config.transport if t in features]
    if not usable:  # fetchLater alone where there is none: every record is refused, so it
        assert_only_queued(run.rows)  # waits in the client queue for a later page load
        return
    assert_wire(run)
    assert transports(run, "leave") == {usable[0]}
    stored = {r.number: [row["type"] for row in r.stored] for r in run.results}
    for result in run.results:
        if BY_NUMBER[result.number].dead_page:
            continue
        leaves = [row for row in result.stored if row["type"] == "leave"]
        visits = BY_NUMBER[result.number].visits
        assert len({row["id"] for row in leaves}) == len(leaves) == visits, result.to_dict()
    if "fetchlater" in usable:  # armed ahead of time: survives a crash and a closed browser
        assert stored[8].count("leave") == stored[9].count("leave") == 1
    else:  # nothing armed: a crash runs no page event, so its leave is lost
        assert "leave" not in stored[8]
    notes = {r.number: " ".join(r.notes) for r in run.results}
    assert "back-forward cache" in notes[7]
    assert "visibilityState hidden" in notes[6]
    outbound = [row for row in run.rows if row["type"] == "outbound"]
    assert len(outbound) == 1 and outbound[0]["target"].startswith("https://")


@pytest.mark.parametrize("first", ["beacon", "keepalive"])
def test_fetchlater_listed_later_covers_crash_and_close(
    chromium: str, tmp_path: Path, first: str
) -> None:
    # The first transport sends what page events can send; the copy armed with fetchLater
    # delivers the leave record where no page event runs (crash, closed browser).
    run = drive(chromium, tmp_path, (1, 5, 8, 9), transport=(first, "fetchlater"))
    assert_delivered(run)
    assert_wire(run)
    by_scenario = {
        r.number: {row["type"]: row["transport"] for row in r.stored} for r in run.results
    }
    assert by_scenario[1]["leave"] == by_scenario[5]["leave"] == first
    assert by_scenario[8]["leave"] == by_scenario[9]["leave"] == "fetchlater"
    assert all(by_scenario[n]["pageview"] == first for n in by_scenario)


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_each_encoding(chromium: str, tmp_path: Path, encoding: str) -> None:
    run = drive(chromium, tmp_path, FAST, encoding=encoding)
    assert_delivered(run)
    assert_wire(run)
    leaves = [row for row in run.rows if row["type"] == "leave"]
    assert leaves and all(isinstance(row["data"]["visible_ms"], int) for row in leaves)


@pytest.mark.parametrize("encoding", ["text", "json"])
@pytest.mark.parametrize("transport", [("beacon",), ("keepalive",), ("fetchlater",)])
def test_receiver_on_another_origin_allowed(
    chromium: str, tmp_path: Path, encoding: str, transport: tuple[str, ...]
) -> None:
    run = drive(
        chromium, tmp_path, (1, 2, 5), origin="other", encoding=encoding, transport=transport
    )
    assert_delivered(run)
    assert_wire(run)
    assert transports(run, "leave") == set(transport)


def test_receiver_on_another_origin_not_allowed_stores_nothing(
    chromium: str, tmp_path: Path
) -> None:
    def refused(run: Run) -> None:
        """What the browser got instead: 403, and no permission in a preflight's answer."""
        headers = {"Origin": run.site_origin, "Content-Type": "text/plain"}
        body = '{"v":1,"id":"x1","type":"pageview","url":"http://a/"}'
        assert httpx.post(run.collector, content=body, headers=headers).status_code == 403
        preflight = httpx.options(
            run.collector,
            headers={
                "Origin": run.site_origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert "access-control-allow-origin" not in preflight.headers

    run = drive(
        chromium,
        tmp_path,
        (1, 5),
        origin="other",
        allowed=False,
        timeout=2,
        transport=("beacon", "keepalive"),
        then=refused,
    )
    assert run.rows == []
    for result in run.results:
        assert result.stored == [] and result.page_errors == []
        assert result.missing  # and the report says so


def test_ping_links_outbound(chromium: str, tmp_path: Path) -> None:
    run = drive(chromium, tmp_path, (1, 2), ping_links="outbound")
    assert_delivered(run)
    assert_wire(run)
    outbound = [row for row in run.rows if row["type"] == "outbound"]
    # The browser's ping is the one record of the click: the module sends none of its own.
    assert [(row["transport"], row["content_type"]) for row in outbound] == [("ping", "text/ping")]
    click = next(r for r in run.results if r.number == 2)
    assert outbound[0]["url"] == click.url
    assert outbound[0]["target"].startswith("https://")


# --- navigation is not delayed ---------------------------------------------------------------


class _Arrivals(http.server.SimpleHTTPRequestHandler):
    """Serves a directory and notes when each GET arrived (time.monotonic, this process)."""

    arrivals: list[tuple[str, float]]

    def do_GET(self) -> None:
        self.arrivals.append((self.path, time.monotonic()))
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _pages(directory: Path) -> None:
    link = '<p><a id="next" href="b.html" style="font-size:40px">next</a></p>'
    for name in ("a.html", "b.html"):
        write(
            directory / name,
            f"<!doctype html><html><head><title>{name}</title></head><body>{link}</body></html>",
        )


async def _click_to_request(
    chromium: str, base: str, arrivals: list[tuple[str, float]], tries: int
) -> dict[str, list[float]]:
    from playwright.async_api import async_playwright

    from sitebeacon.proof.engines.chromium import LAUNCH_ARGS

    timings: dict[str, list[float]] = {"with": [], "without": []}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=list(LAUNCH_ARGS))
        for _ in range(tries):
            for variant in ("without", "with"):  # interleaved: drift hits both alike
                page = await browser.new_page()
                await page.goto(f"{base}/{variant}/a.html")
                await page.wait_for_timeout(200)  # the module's load work is done
                box = await page.locator("#next").bounding_box()
                assert box is not None
                arrivals.clear()
                clicked = time.monotonic()
                await page.mouse.click(box["x"] + 5, box["y"] + 5)
                await page.wait_for_url("**/b.html")
                arrived = next(t for path, t in arrivals if path.endswith("/b.html"))
                timings[variant].append(arrived - clicked)
                await page.close()
        await browser.close()
    return timings


def test_the_module_does_not_delay_navigation(chromium: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    _pages(root / "with")
    _pages(root / "without")
    arrivals: list[tuple[str, float]] = []
    handler = type("Handler", (_Arrivals,), {"arrivals": arrivals})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(handler, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with running_receiver(f"sqlite:///{tmp_path / 'r.db'}", allow_origins=[base]) as other:
            with_config = Config(endpoint=f"{other}/collect")
            inject_site(root / "with", with_config, build_module(with_config))
            timings = asyncio.run(_click_to_request(chromium, base, arrivals, tries=7))
            with open_store(f"sqlite:///{tmp_path / 'r.db'}") as store:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    leaves = [
                        r
                        for r in store.records()
                        if r["type"] == "leave" and r["url"].endswith("/with/a.html")
                    ]
                    if len(leaves) >= 7:
                        break
                    time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
    with_module = statistics.median(timings["with"])
    without = statistics.median(timings["without"])
    assert with_module < without * 1.25 + 0.050, timings
    assert len(leaves) == 7  # and every one of those clicks was reported


# --- client-side navigation (pushState router) ------------------------------------------------
# These assert issue 11's `spa = "history"` behaviour; they pass once the client module has it
# (branch `client`): a page view and exactly one leave per route, no secret in any stored URL.

SECRETS = ("email", "a%40b", "a@b", "access_token", "xyz")
SPA_START = "/app/?email=a%40b.c&utm_source=news#access_token=xyz"
ROUTES = ("/app/one", "/app/two", "/app/three")
# A router as Turbo, Astro or VitePress do it: links handled by pushState, a replaceState that
# keeps the path (scroll restoration, not a route change), and the head script run once more
# after each route change (a second copy of the module must do nothing).
SPA_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>app</title></head><body>
<nav><a href="/app/one" data-route>one</a> <a href="/app/two" data-route>two</a>
<a href="/app/three" data-route>three</a> <a href="/other.html">elsewhere</a></nav>
<main id="view">home</main>
<script>
document.addEventListener("click", function (event) {
  var link = event.target.closest("a[data-route]");
  if (!link) return;
  event.preventDefault();
  history.pushState({}, "", link.href);
  history.replaceState({scroll: 0}, "", location.href);
  document.getElementById("view").textContent = link.textContent;
  var module = document.querySelector("script[data-sitebeacon]");
  var again = document.createElement("script");
  again.textContent = module.textContent;
  document.head.appendChild(again);
});
</script></body></html>"""


def spa_site(site: Path, config: Config) -> None:
    write(site / "app/index.html", SPA_PAGE)
    write(site / "other.html", "<!doctype html><title>other</title><p>another page")
    inject_site(site, config, build_module(config))


async def _routes(tab: Tab, plan: SitePlan, outcome: Outcome, ready: Ready) -> None:
    """Follow the three routes by real clicks, then leave the app by a full-page link."""
    for route in ROUTES:
        await tab.click(route)
        await tab.wait_url(lambda now, route=route: urlsplit(now).path == route, loaded=False)
        await ready(plan.url(route), 1)
    await tab.click("/other.html")
    await tab.wait_url(lambda now: now.endswith("/other.html"))
    await tab.close()


ROUTE_SCENARIO = Scenario(0, "pushState routes, then a full-page link", _routes)


def _path_ready(read: Callable[[], list[dict[str, Any]]], timeout: float) -> Ready:
    """Ready once a page view of the URL's path is stored (whatever query the module kept)."""

    async def ready(url: str, pageviews: int) -> None:
        path = urlsplit(url).path
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = [r for r in read() if r["type"] == "pageview"]
            if sum(1 for r in rows if urlsplit(r["url"]).path == path) >= pageviews:
                return
            await asyncio.sleep(0.05)

    return ready


async def _spa_visit(
    engine: str, chromium: str | None, base: str, read: Callable[[], list[dict[str, Any]]]
) -> Outcome:
    outcome = Outcome()
    ready = _path_ready(read, 15)
    plan = SitePlan(base, "/app/", "/other.html", None, None)
    async with (
        make_engine(engine, ready, browser=chromium) as driver,
        driver.open(ROUTE_SCENARIO, base + SPA_START, outcome) as tab,
    ):
        await ROUTE_SCENARIO.drive(tab, plan, outcome, ready)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            leaves = [r for r in read() if r["type"] == "leave"]
            if len(leaves) >= 1 + len(ROUTES):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1)  # late copies would show up as extra rows
    return outcome


@pytest.mark.parametrize("order", ORDERS)
def test_spa_navigation(engine: tuple[str, str | None], tmp_path: Path, order: str) -> None:
    """A pushState router in each engine: a page view and exactly one leave per route, the
    new route's `ref` the old route's URL, and no secret query or fragment stored anywhere."""
    name, chromium = engine
    with served(tmp_path) as (site, base, endpoint, collect_db):
        config = Config(endpoint=endpoint, transport=ORDERS[order])
        spa_site(site, config)
        with open_store(collect_db) as store:
            outcome = asyncio.run(_spa_visit(name, chromium, base, store.records))
            rows = store.records()
    assert outcome.page_errors == [] and outcome.failures == [], outcome
    if not any(t in FEATURES[name] for t in config.transport):
        assert_only_queued(rows)  # fetchLater alone where there is none: the queue carries all
        return
    for row in rows:
        for field_name in ("url", "referrer", "target"):
            value = str(row.get(field_name) or "")
            assert not any(secret in value for secret in SECRETS), row
    paths = ["/app/", *ROUTES]
    app = [row for row in rows if urlsplit(row["url"]).path in paths]
    for type_ in ("pageview", "leave"):
        found = sorted(urlsplit(row["url"]).path for row in app if row["type"] == type_)
        assert found == sorted(paths), (type_, app)
    views = {urlsplit(row["url"]).path: row for row in app if row["type"] == "pageview"}
    assert views["/app/"]["url"] == base + "/app/?utm_source=news"
    for before, after in itertools.pairwise(paths):
        assert views[after]["referrer"] == views[before]["url"]
    leaves = [row for row in app if row["type"] == "leave"]
    assert len({row["id"] for row in leaves}) == len(leaves)


# --- full-page visits: one leave each, no secret, nothing for an ignored visitor -------------

PAGES_START = "/a/?email=a%40b.c&utm_source=news#access_token=xyz"


async def _two_pages(tab: Tab, plan: SitePlan, outcome: Outcome, ready: Ready) -> None:
    """Follow the start page's link to a second page by a real click, then close the tab."""
    await tab.click("/b/")
    await tab.wait_url(lambda now: urlsplit(now).path == "/b/")
    await ready(plan.url("/b/"), 1)
    await tab.close()


async def _ignored(tab: Tab, plan: SitePlan, outcome: Outcome, ready: Ready) -> None:
    """The site's owner sets the ignore flag, then visits both pages the same way."""
    await tab.evaluate("localStorage.sitebeacon_ignore = '1'")
    await tab.click("/a/?utm_source=ignored")
    await tab.wait_url(lambda now: urlsplit(now).path == "/a/")
    await tab.click("/b/")
    await tab.wait_url(lambda now: urlsplit(now).path == "/b/")
    await asyncio.sleep(0.5)
    await tab.close()


TWO_PAGES = Scenario(0, "a full-page link, then a tab close", _two_pages)
IGNORED = Scenario(0, "the ignore flag, then two pages", _ignored)


async def _visits(
    engine: str, chromium: str | None, base: str, read: Callable[[], list[dict[str, Any]]]
) -> Outcome:
    outcome = Outcome()
    path_ready = _path_ready(read, 15)

    async def ready(url: str, pageviews: int) -> None:
        if urlsplit(url).path != "/flag.html":  # (a page without the module sends nothing)
            await path_ready(url, pageviews)

    plan = SitePlan(base, "/a/", "/b/", "/b/", None)
    async with make_engine(engine, ready, browser=chromium) as driver:
        async with driver.open(TWO_PAGES, base + PAGES_START, outcome) as tab:
            await TWO_PAGES.drive(tab, plan, outcome, ready)
        async with driver.open(IGNORED, base + "/flag.html", outcome) as tab:
            await IGNORED.drive(tab, plan, outcome, ready)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and sum(r["type"] == "leave" for r in read()) < 2:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1)  # late copies, or the ignored visit's, would show up as extra rows
    return outcome


def test_full_page_visits_one_leave_each_no_secret_and_nothing_ignored(
    engine: tuple[str, str | None], tmp_path: Path
) -> None:
    """What issue 11 checks in every engine: a page view per page and exactly one leave per
    visit, no secret of the start URL in any stored URL, and nothing at all from a browser
    where the site's owner set the ignore flag."""
    name, chromium = engine
    with served(tmp_path) as (site, base, endpoint, collect_db):
        write(site / "a/index.html", '<!doctype html><title>a</title><a href="/b/">b</a>')
        write(site / "b/index.html", "<!doctype html><title>b</title><p>b")
        config = Config(endpoint=endpoint)
        inject_site(site, config, build_module(config))
        write(site / "flag.html", '<!doctype html><a href="/a/?utm_source=ignored">a</a>')
        with open_store(collect_db) as store:
            outcome = asyncio.run(_visits(name, chromium, base, store.records))
            rows = store.records()
    assert outcome.page_errors == [] and outcome.failures == [], outcome
    for row in rows:
        for field_name in ("url", "referrer", "target"):
            value = str(row.get(field_name) or "")
            assert not any(secret in value for secret in SECRETS), row
    assert sorted((row["type"], urlsplit(row["url"]).path) for row in rows) == [
        ("leave", "/a/"),
        ("leave", "/b/"),
        ("pageview", "/a/"),
        ("pageview", "/b/"),
    ], rows  # the ignored visit (utm_source=ignored) stored nothing
    views = {urlsplit(row["url"]).path: row for row in rows if row["type"] == "pageview"}
    assert views["/a/"]["url"] == base + "/a/?utm_source=news"
    assert views["/b/"]["referrer"] == views["/a/"]["url"]
    leaves = [row for row in rows if row["type"] == "leave"]
    assert len({row["id"] for row in leaves}) == 2
    assert all(row["data"]["visible_ms"] > 0 for row in leaves)


def test_a_ping_stores_no_secret_of_the_page_url(chromium: str, tmp_path: Path) -> None:
    # Chromium sends Ping-From with the page's whole address (query and fragment included);
    # what the receiver stores keeps only the default kept parameters.
    from playwright.sync_api import sync_playwright

    from sitebeacon.proof.engines.chromium import LAUNCH_ARGS

    site = tmp_path / "site"
    link = '<a id="out" href="http://127.0.0.1:9/elsewhere">out</a>'
    write(
        site / "app" / "index.html", f"<!doctype html><html><head></head><body>{link}</body></html>"
    )
    config = Config(events=(), ping_links="outbound")
    inject_site(site, config, build_module(config))
    db = f"sqlite:///{tmp_path / 'p.db'}"
    with running_receiver(db, site_dir=site) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=list(LAUNCH_ARGS))
        try:
            page = browser.new_page()
            page.goto(f"{base}/app/?email=a%40b.c&utm_source=nl#access_token=xyz")
            page.click("#out", no_wait_after=True)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                with open_store(db) as store:
                    rows = store.records()
                if rows:
                    break
                time.sleep(0.1)
        finally:
            browser.close()
    assert [(row["transport"], row["url"]) for row in rows] == [
        ("ping", f"{base}/app/?utm_source=nl")
    ]
