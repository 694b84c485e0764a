"""The client module's behaviour in real Chromium, against a real HTTP server on 127.0.0.1.

The server here is a small recorder from the standard library (the real receiver is tested on
its own): it serves test pages with the module inline and keeps every POST body it receives.

Headless Chromium under Playwright always reports the page as visible (Playwright holds focus
emulation on, and new tabs, bring_to_front, minimising and Target.activateTarget all leave
`document.visibilityState` at "visible"), so the tests of repeated hide/show drive
`document.hidden` and dispatch `visibilitychange` from the page; a real hide in a raw-CDP
Chromium is covered by scenario 6 of `sitebeacon verify`. Everything else is real: navigation,
the back-forward cache, renderer crashes, and each transport's own requests.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from files import write

from sitebeacon import protocol
from sitebeacon.collect.server import running_receiver
from sitebeacon.collect.stores import open_store
from sitebeacon.config import Config

# Only loopback resolves there too: no test can reach the network.
from sitebeacon.proof.engines.chromium import IGNORED_DEFAULT_ARGS, LAUNCH_ARGS
from sitebeacon.site.generate import build_module

ID_PATTERN = re.compile(protocol.ID_PATTERN)
WAIT = 5.0

Record = dict[str, Any]


@dataclass
class Received:
    """One POST body as the server got it."""

    path: str
    content_type: str
    raw: bytes
    headers: dict[str, str]
    records: list[Record]


@dataclass
class Recorder:
    """What the test server serves (`pages`) and what it was sent (`received`)."""

    pages: dict[str, bytes] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""

    def records(self, url: str, type_: str | None = None) -> list[Record]:
        """Records about the page at `url` (any #fragment; optionally one type), by arrival."""
        with self.lock:
            bodies = list(self.received)
        return [
            record
            for body in bodies
            for record in body.records
            if str(record.get("url")).split("#")[0] == url
            and (type_ is None or record.get("type") == type_)
        ]

    def wait_records(
        self, url: str, type_: str, count: int = 1, timeout: float = WAIT
    ) -> list[Record]:
        """Wait until at least `count` records of `type_` about `url` arrived; return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.records(url, type_)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        found = self.records(url, type_)
        assert len(found) >= count, f"{count} {type_} record(s) for {url} expected, got {found}"
        return found

    def bodies(self, predicate: Callable[[Received], bool]) -> list[Received]:
        with self.lock:
            return [body for body in self.received if predicate(body)]


def parse_body(content_type: str, raw: bytes) -> list[Record]:
    """The records in a body, per docs/protocol.md "Encodings" (a ping body holds none)."""
    media_type = content_type.split(";")[0].strip()
    if media_type in ("text/plain", "application/json"):
        decoded = json.loads(raw)
        return decoded if isinstance(decoded, list) else [decoded]
    if media_type == "application/x-www-form-urlencoded":
        return [dict(parse_qsl(raw.decode(), keep_blank_values=True))]
    return []


def serve(recorder: Recorder) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            page = recorder.pages.get(self.path)
            if page is None:
                page = b"<!doctype html><title>elsewhere</title><p>elsewhere"
            if self.path == "/favicon.ico":
                self.send_response(204)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            content_type = self.headers.get("Content-Type", "")
            body = Received(
                self.path, content_type, raw, dict(self.headers), parse_body(content_type, raw)
            )
            with recorder.lock:
                recorder.received.append(body)
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serving() -> Iterator[Recorder]:
    """A recording server for the module's tests, shut down after them."""
    recorder = Recorder()
    server = serve(recorder)
    yield recorder
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def site() -> Iterator[Recorder]:
    yield from serving()


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[Recorder]:
    """Another origin (another port) for outbound links to land on."""
    yield from serving()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    """One Chromium for the module (the `chromium` fixture skips, or fails under CI=true)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium,
            args=list(LAUNCH_ARGS),
            # Playwright turns the back-forward cache off; the module must handle it, so keep it.
            ignore_default_args=list(IGNORED_DEFAULT_ARGS),
        )
        yield launched
        launched.close()


@dataclass
class Tab:
    """A page in a fresh context, with every error it logged and the /collect requests seen."""

    page: Any
    errors: list[str]
    collect_requests: list[str]  # Playwright resource types of the POSTs to /collect


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    page.on(
        "request",
        lambda request: (
            requests.append(request.resource_type)
            if request.method == "POST" and request.url.endswith("/collect")
            else None
        ),
    )
    yield Tab(page, errors, requests)
    cookies = context.cookies()
    context.close()
    assert errors == [], "the module must not throw or log errors into the page"
    assert cookies == [], "the module must set no cookies"


_page_numbers = itertools.count()

SCRIPT_IN_HEAD = "<script data-sitebeacon>{module}</script>"


def add_page(site: Recorder, config: Config, body: str = "", head: str = "") -> str:
    """Serve a page carrying the module for `config`; return its URL (unique per call)."""
    path = f"/page/{next(_page_numbers)}"
    html = (
        "<!doctype html><html><head><meta charset=utf-8><title>test</title>"
        + head
        + SCRIPT_IN_HEAD.format(module=build_module(config))
        + f"</head><body>{body}<a id=next href=/next>next</a></body></html>"
    )
    site.pages[path] = html.encode()
    return site.base + path


def leave_page(tab: Tab) -> None:
    """Leave the page the way a reader does: follow a same-origin link."""
    tab.page.click("#next")
    tab.page.wait_for_url("**/next")


# Drive visibility from the page: see the module docstring for why.
SET_HIDDEN = """hidden => {
  Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
  Object.defineProperty(document, "visibilityState", {
    configurable: true, get: () => hidden ? "hidden" : "visible"});
  document.dispatchEvent(new Event("visibilitychange"));
  if (!hidden) {  // shown again: back to the real (visible) state, so a navigation hides it
    delete document.hidden;
    delete document.visibilityState;
  }
}"""


def set_hidden(tab: Tab, hidden: bool) -> None:
    tab.page.evaluate(SET_HIDDEN, hidden)


def crash(browser: Any, tab: Tab) -> None:
    """Crash the page's renderer with CDP Page.crash.

    Page.crash never answers, so it is sent through a browser-level CDP session as a raw
    message to the page target, which does not wait for a reply.
    """
    own = tab.page.context.new_cdp_session(tab.page)
    target_id = own.send("Target.getTargetInfo")["targetInfo"]["targetId"]
    session = browser.new_browser_cdp_session()
    attached = session.send("Target.attachToTarget", {"targetId": target_id, "flatten": False})
    message = json.dumps({"id": 1, "method": "Page.crash"})
    session.send(
        "Target.sendMessageToTarget", {"sessionId": attached["sessionId"], "message": message}
    )
    tab.page.wait_for_event("crash", timeout=WAIT * 1000)


def check_record(record: Record, url: str, type_: str) -> None:
    assert record["v"] == 1
    assert ID_PATTERN.fullmatch(record["id"]), record["id"]
    assert record["type"] == type_
    assert record["url"] == url
    assert abs(record["ts"] - time.time() * 1000) < 60_000


# --- page views and leaves ----------------------------------------------------------------


def test_pageview_arrives_on_load_with_referrer(site: Recorder, tab: Tab) -> None:
    url = add_page(site, Config())
    site.pages["/from"] = f'<!doctype html><a id=go href="{url}">go</a>'.encode()
    tab.page.goto(site.base + "/from")
    tab.page.click("#go")
    [pageview] = site.wait_records(url, "pageview")
    check_record(pageview, url, "pageview")
    assert pageview["ref"] == site.base + "/from"
    assert pageview["transport"] == "fetchlater"


def test_leave_arrives_on_navigation_with_visible_time(site: Recorder, tab: Tab) -> None:
    url = add_page(site, Config())
    tab.page.goto(url)
    site.wait_records(url, "pageview")
    time.sleep(0.5)
    started = time.monotonic()
    leave_page(tab)
    [leave] = site.wait_records(url, "leave")
    check_record(leave, url, "leave")
    assert leave["transport"] == "fetchlater"
    assert 500 <= leave["data"]["visible_ms"] <= (time.monotonic() - started + 0.5 + 2) * 1000
    time.sleep(0.5)
    assert len(site.records(url, "leave")) == 1, "pagehide after hidden must not send again"


@pytest.mark.parametrize(
    ("transport", "carrier", "resource_type"),
    [
        (("beacon",), "beacon", "ping"),
        (("keepalive",), "keepalive", "fetch"),
        (("fetchlater",), "fetchlater", None),
        (("beacon", "fetchlater", "keepalive"), "beacon", "ping"),
        (("keepalive", "beacon"), "keepalive", "fetch"),
    ],
)
def test_transport_field_names_what_carried_the_record(
    site: Recorder,
    tab: Tab,
    transport: tuple[str, ...],
    carrier: str,
    resource_type: str | None,
) -> None:
    url = add_page(site, Config(transport=transport))
    tab.page.goto(url)
    [pageview] = site.wait_records(url, "pageview")
    leave_page(tab)
    [leave] = site.wait_records(url, "leave")
    assert pageview["transport"] == leave["transport"] == carrier
    # Playwright sees the page view's request (a leave sent while the page unloads may not be
    # reported): its resource type says which API made it.
    if resource_type is None:
        assert "ping" not in tab.collect_requests  # fetchLater's own requests show as fetch
    else:
        assert tab.collect_requests[0] == resource_type
        assert set(tab.collect_requests) == {resource_type}


def test_one_shot_records_through_fetchlater_arrive_at_once(site: Recorder, tab: Tab) -> None:
    # With fetchlater first, a page view is handed to fetchLater with activateAfter: 0; it must
    # reach the server while the reader is still on the page, not only when they leave.
    url = add_page(site, Config(transport=("fetchlater", "beacon")))
    tab.page.goto(url)
    [pageview] = site.wait_records(url, "pageview", timeout=2.0)
    assert pageview["transport"] == "fetchlater"
    assert tab.page.url == url


# --- encodings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "media_type"),
    [
        ("text", "text/plain;charset=UTF-8"),
        ("json", "application/json"),
        ("form", "application/x-www-form-urlencoded;charset=UTF-8"),
    ],
)
@pytest.mark.parametrize("transport", ["fetchlater", "beacon", "keepalive"])
def test_encodings_follow_the_protocol(
    site: Recorder, tab: Tab, encoding: str, media_type: str, transport: str
) -> None:
    url = add_page(site, Config(transport=(transport,), encoding=encoding))
    tab.page.goto(url)
    site.wait_records(url, "pageview")
    time.sleep(0.2)
    leave_page(tab)
    [leave] = site.wait_records(url, "leave")
    [body] = site.bodies(lambda body: body.records == [leave])
    assert body.content_type == media_type
    if encoding == "form":
        # One field per record field; numbers as decimal strings, data as a JSON string.
        assert leave["v"] == "1" and leave["seq"].isdigit() and leave["ts"].isdigit()
        assert json.loads(leave["data"])["visible_ms"] >= 200
        assert body.raw.decode().startswith("v=1&id=")
    else:
        assert leave["v"] == 1 and leave["data"]["visible_ms"] >= 200
    assert leave["transport"] == transport


# --- falling back ---------------------------------------------------------------------------


def test_quota_exceeded_fetchlater_falls_back(site: Recorder, tab: Tab) -> None:
    tab.page.add_init_script(
        "window.fetchLater = () => { throw new DOMException('full', 'QuotaExceededError'); };"
    )
    url = add_page(site, Config())
    tab.page.goto(url)
    [pageview] = site.wait_records(url, "pageview")
    leave_page(tab)
    [leave] = site.wait_records(url, "leave")
    assert pageview["transport"] == leave["transport"] == "beacon"
    assert tab.collect_requests[0] == "ping"


def test_refused_beacon_falls_back_to_keepalive(site: Recorder, tab: Tab) -> None:
    tab.page.add_init_script("navigator.sendBeacon = () => false;")
    url = add_page(site, Config(transport=("beacon", "keepalive")))
    tab.page.goto(url)
    [pageview] = site.wait_records(url, "pageview")
    assert pageview["transport"] == "keepalive"
    assert tab.collect_requests == ["fetch"]


def test_throwing_transports_never_reach_the_page(site: Recorder, tab: Tab) -> None:
    # Every transport throws: nothing can be sent, and the page must see no error at all
    # (the `tab` fixture fails the test on any pageerror or console error).
    tab.page.add_init_script(
        "navigator.sendBeacon = () => { throw new Error('beacon broken'); };"
        "window.fetch = () => { throw new Error('fetch broken'); };"
        "window.fetchLater = () => { throw new Error('fetchLater broken'); };"
    )
    url = add_page(site, Config(events=("pageview", "leave", "outbound", "custom")))
    tab.page.goto(url)
    tab.page.evaluate("window.sitebeacon.event('tried', {a: 1})")
    set_hidden(tab, True)
    set_hidden(tab, False)
    leave_page(tab)
    time.sleep(0.3)
    assert site.records(url) == []


# --- repeats: one id per visit, rising seq ----------------------------------------------------


def test_repeated_hide_and_show_gives_one_id_with_rising_seq(site: Recorder, tab: Tab) -> None:
    url = add_page(site, Config(transport=("beacon",)))
    tab.page.goto(url)
    site.wait_records(url, "pageview")
    for copies in range(1, 4):
        time.sleep(0.2)
        set_hidden(tab, True)
        site.wait_records(url, "leave", copies)
        set_hidden(tab, False)
    set_hidden(tab, True)  # hidden again: the last figures
    leaves = site.wait_records(url, "leave", 4)
    leave_page(tab)  # pagehide while hidden, nothing new: no fifth copy
    time.sleep(0.5)
    leaves = site.records(url, "leave")
    assert len(leaves) == 4
    assert len({leave["id"] for leave in leaves}) == 1
    assert [leave["seq"] for leave in leaves] == [0, 1, 2, 3]
    visible = [leave["data"]["visible_ms"] for leave in leaves]
    assert visible == sorted(visible) and visible[0] >= 200 and visible[2] >= 600


def test_armed_leave_is_sent_once_with_the_final_figures(site: Recorder, tab: Tab) -> None:
    # fetchLater first: each hide re-arms the record (abort + arm); nothing goes on the wire
    # until the page goes away, and then only the last copy.
    url = add_page(site, Config())
    tab.page.goto(url)
    site.wait_records(url, "pageview")
    for _ in range(2):
        time.sleep(0.2)
        set_hidden(tab, True)
        time.sleep(0.1)
        set_hidden(tab, False)
    time.sleep(0.3)
    assert site.records(url, "leave") == []
    leave_page(tab)
    [leave] = site.wait_records(url, "leave")
    time.sleep(0.5)
    assert len(site.records(url, "leave")) == 1
    # Armed at load (seq 0), re-armed at each of the two hides and at the final pagehide.
    assert leave["seq"] == 3
    assert 700 <= leave["data"]["visible_ms"] < 5000
    assert leave["transport"] == "fetchlater"


def test_bfcache_restore_starts_a_new_visit(site: Recorder, tab: Tab) -> None:
    url = add_page(
        site,
        Config(),
        head="<script>addEventListener('pageshow', e => "
        "{ if (e.persisted) window.restored = true; });</script>",
    )
    tab.page.goto(url)
    site.wait_records(url, "pageview")
    leave_page(tab)
    site.wait_records(url, "leave")
    tab.page.go_back(wait_until="commit")
    tab.page.wait_for_function("window.restored === true", timeout=WAIT * 1000)
    pageviews = site.wait_records(url, "pageview", 2)
    time.sleep(0.3)
    leave_page(tab)
    leaves = site.wait_records(url, "leave", 2)
    time.sleep(0.5)
    leaves = site.records(url, "leave")
    assert len(pageviews) == 2 and pageviews[0]["id"] != pageviews[1]["id"]
    assert len(leaves) == 2 and leaves[0]["id"] != leaves[1]["id"]
    assert leaves[1]["data"]["visible_ms"] >= 300


# --- crash ---------------------------------------------------------------------------------


def test_armed_leave_survives_a_renderer_crash(browser: Any, site: Recorder, tab: Tab) -> None:
    url = add_page(site, Config())
    tab.page.goto(url)
    site.wait_records(url, "pageview")
    crash(browser, tab)
    [leave] = site.wait_records(url, "leave")
    check_record(leave, url, "leave")
    assert leave["transport"] == "fetchlater"
    tab.errors.clear()  # the crash itself is not the module's error


def test_rearm_timer_bounds_what_a_crash_loses(browser: Any, site: Recorder, tab: Tab) -> None:
    # A fake clock (Date and timers only; fetchLater stays real) lets 25 s of reading pass at
    # once: the record re-armed every 10 s holds all but the last interval when the renderer dies.
    tab.page.clock.install()
    url = add_page(site, Config())
    tab.page.goto(url)
    site.wait_records(url, "pageview")
    tab.page.clock.run_for(25_000)
    crash(browser, tab)
    [leave] = site.wait_records(url, "leave")
    assert 25_000 - 10_000 <= leave["data"]["visible_ms"] <= 25_000  # lost at most one interval
    assert leave["seq"] == 2
    tab.errors.clear()


@pytest.mark.parametrize("first", ["beacon", "keepalive"])
def test_fetchlater_listed_later_still_arms_for_a_crash(
    browser: Any, site: Recorder, tab: Tab, first: str
) -> None:
    # fetchLater after another transport: the leave record is still armed while visible, so a
    # renderer crash (no page event runs) delivers it; the page view went by the first choice.
    url = add_page(site, Config(transport=(first, "fetchlater")))
    tab.page.goto(url)
    [pageview] = site.wait_records(url, "pageview")
    assert pageview["transport"] == first
    time.sleep(0.3)
    crash(browser, tab)
    [leave] = site.wait_records(url, "leave")
    assert leave["transport"] == "fetchlater" and leave["seq"] == 0
    tab.errors.clear()


def test_fetchlater_listed_later_leaves_the_hide_to_the_first(site: Recorder, tab: Tab) -> None:
    # On hide the armed copy is cancelled and the first transport sends the figures: exactly one
    # copy per hide on the wire, none by fetchLater; shown again, the record is re-armed.
    url = add_page(site, Config(transport=("beacon", "fetchlater")))
    tab.page.goto(url)
    site.wait_records(url, "pageview")
    time.sleep(0.2)
    set_hidden(tab, True)
    [first] = site.wait_records(url, "leave")
    set_hidden(tab, False)
    time.sleep(0.3)
    leave_page(tab)
    leaves = site.wait_records(url, "leave", 2)
    time.sleep(0.8)  # an armed copy left behind would arrive now
    leaves = site.records(url, "leave")
    assert [leave["transport"] for leave in leaves] == ["beacon", "beacon"]
    assert first["data"]["visible_ms"] >= 200
    assert leaves[1]["data"]["visible_ms"] >= first["data"]["visible_ms"] + 300
    # seq: armed at load (0), sent at the hide (1), armed when shown (2), sent at the leave (3).
    assert [leave["seq"] for leave in leaves] == [1, 3]
    assert len({leave["id"] for leave in leaves}) == 1


def test_nothing_is_armed_after_pagehide(browser: Any, site: Recorder, tab: Tab) -> None:
    # Headless Chromium can report the page visible after pagehide (entering the back-forward
    # cache); the visit is over then, so nothing may be re-armed: a crash afterwards must not
    # deliver a second, fetchLater copy.
    url = add_page(site, Config(transport=("beacon", "fetchlater")))
    tab.page.goto(url)
    site.wait_records(url, "pageview")
    time.sleep(0.2)
    tab.page.evaluate(
        """() => {
          dispatchEvent(new PageTransitionEvent("pagehide", {persisted: true}));
          document.dispatchEvent(new Event("visibilitychange"));  // document.hidden is false
        }"""
    )
    [leave] = site.wait_records(url, "leave")
    time.sleep(0.3)
    crash(browser, tab)
    time.sleep(1.0)  # a copy armed after pagehide would arrive now
    assert [copy["transport"] for copy in site.records(url, "leave")] == ["beacon"]
    assert leave["data"]["visible_ms"] >= 200
    tab.errors.clear()


# --- outbound clicks ------------------------------------------------------------------------


def test_outbound_click_records_target_and_navigates(
    site: Recorder, elsewhere: Recorder, tab: Tab
) -> None:
    # A share link made from the page's address: the target is cleaned like `url`.
    target = elsewhere.base + "/landing?utm_source=x&share=%2Fp%3Femail%3Da%2540b.c#frag"
    # The page's own handler stops propagation: the module listens in the capture phase.
    url = add_page(
        site,
        Config(),
        f'<a id=out href="{target}" onclick="event.stopPropagation()">out</a>',
    )
    tab.page.goto(url)
    site.wait_records(url, "pageview")
    tab.page.click("#out")
    tab.page.wait_for_url(target)  # the click was not prevented
    [outbound] = site.wait_records(url, "outbound")
    check_record(outbound, url, "outbound")
    assert outbound["target"] == elsewhere.base + "/landing?utm_source=x"
    assert outbound["transport"] == "fetchlater"


def test_outbound_middle_click_counts_right_click_does_not(
    site: Recorder, elsewhere: Recorder, tab: Tab
) -> None:
    middle, right, left = (elsewhere.base + f"/{name}" for name in ("middle", "right", "left"))
    url = add_page(
        site,
        Config(transport=("beacon",)),
        f'<a id=m href="{middle}">m</a> <a id=r href="{right}">r</a> '
        f'<a id=l href="{left}" target=_blank>l</a>',
    )
    tab.page.goto(url)
    site.wait_records(url, "pageview")
    tab.page.click("#m", button="middle")
    site.wait_records(url, "outbound")
    tab.page.click("#r", button="right")
    tab.page.keyboard.press("Escape")
    tab.page.click("#l")  # a later click as a barrier: its record arrives after any from #r
    site.wait_records(url, "outbound", 2)
    time.sleep(0.3)
    assert [record["target"] for record in site.records(url, "outbound")] == [middle, left]


def test_links_left_alone(site: Recorder, elsewhere: Recorder, tab: Tab) -> None:
    pinged = elsewhere.base + "/pinged"
    url = add_page(
        site,
        Config(transport=("beacon",)),
        f'<a id=ping href="{pinged}" ping="/collect" target=_blank>ping</a>'
        '<a id=same href="/same" target=_blank>same</a>'
        '<a id=frag href="#top">fragment</a>'
        f'<a id=barrier href="{elsewhere.base}/barrier" target=_blank>barrier</a>',
    )
    tab.page.goto(url)
    site.wait_records(url, "pageview")
    for link in ("#ping", "#same", "#frag", "#barrier"):
        tab.page.click(link)
    [outbound] = site.wait_records(url, "outbound")
    assert outbound["target"] == elsewhere.base + "/barrier"
    # The browser's own <a ping> went out instead (text/ping, body PING).
    deadline = time.monotonic() + WAIT
    while not site.bodies(lambda body: body.raw == b"PING") and time.monotonic() < deadline:
        time.sleep(0.05)
    [ping] = site.bodies(lambda body: body.raw == b"PING")
    assert ping.content_type == "text/ping" and ping.headers["Ping-To"] == pinged
    time.sleep(0.3)
    assert len(site.records(url, "outbound")) == 1


# --- custom events and privacy --------------------------------------------------------------


def test_custom_events(site: Recorder, tab: Tab) -> None:
    url = add_page(site, Config(events=("custom",)))
    tab.page.goto(url)
    tab.page.evaluate("window.sitebeacon.event('signup', {plan: 'pro'})")
    tab.page.evaluate("window.sitebeacon.event('huge', {blob: 'x'.repeat(20000)})")
    [signup] = site.wait_records(url, "signup")
    check_record(signup, url, "signup")
    assert signup["data"] == {"plan": "pro"} and signup["transport"] == "fetchlater"
    [huge] = site.wait_records(url, "huge")
    assert "data" not in huge  # over 16 KiB: left out, the event still counted
    tab.page.evaluate("window.sitebeacon.event('listed', [1, 2])")
    [listed] = site.wait_records(url, "listed")
    assert "data" not in listed  # data must be an object
    assert site.records(url, "pageview") == []  # not configured, not sent


@pytest.mark.parametrize(
    "privacy_signal",
    [
        "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'});",
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});",
    ],
)
def test_respect_dnt_sends_nothing(site: Recorder, tab: Tab, privacy_signal: str) -> None:
    config = Config(events=("pageview", "leave", "outbound", "custom"), respect_dnt=True)
    tab.page.add_init_script(privacy_signal)
    url = add_page(site, config)
    tab.page.goto(url)
    tab.page.evaluate("window.sitebeacon.event('ignored', {})")  # still callable
    leave_page(tab)
    # The same config in a tab without the signal sends (so the wait is long enough to notice).
    control = add_page(site, config)
    tab.page.context.new_page().goto(control)
    site.wait_records(control, "pageview")
    time.sleep(0.5)
    assert site.records(url) == []


def test_module_adds_no_global_but_sitebeacon(site: Recorder, tab: Tab) -> None:
    blank = site.base + "/blank"
    site.pages["/blank"] = b"<!doctype html><title>blank</title>"
    tab.page.goto(blank)
    before = set(tab.page.evaluate("Object.keys(window)"))
    url = add_page(site, Config(events=("pageview", "leave", "outbound", "custom")))
    tab.page.goto(url)
    after = set(tab.page.evaluate("Object.keys(window)"))
    assert after - before == {"sitebeacon"}
    assert tab.page.evaluate("document.cookie") == ""


# --- against the real receiver: what it STORED ------------------------------------------------
# The pages below are served by `sitebeacon receive --site` itself (running_receiver with a site
# directory), and the assertions read the SQLite store it wrote.


@dataclass
class Served:
    """A running receiver serving `root`, storing into `db_url`."""

    base: str
    root: Path
    db_url: str
    pages: Iterator[int] = field(default_factory=itertools.count)

    def add(self, config: Config, body: str = "", head: str = "", name: str = "") -> str:
        """A page carrying the module for `config` at a fresh path; its URL."""
        path = f"/{name or 'p'}{next(self.pages)}/"
        write(
            self.root / path.strip("/") / "index.html",
            "<!doctype html><html><head><meta charset=utf-8><title>t</title>"
            + head
            + SCRIPT_IN_HEAD.format(module=build_module(config))
            + f"</head><body>{body}<a id=next href=/elsewhere/>next</a></body></html>",
        )
        return self.base + path

    def leave(self, tab: Tab) -> None:
        """Follow the page's same-site link, as a reader leaves."""
        tab.page.click("#next")
        tab.page.wait_for_url("**/elsewhere/")

    def stored(self, prefix: str, type_: str | None = None) -> list[Record]:
        """Stored records whose url starts with `prefix` (optionally one type), by id."""
        with open_store(self.db_url) as store:
            rows = store.records()
        return sorted(
            (
                row
                for row in rows
                if str(row["url"]).startswith(prefix) and type_ in (None, row["type"])
            ),
            key=lambda row: str(row["id"]),
        )

    def wait(self, prefix: str, type_: str, count: int = 1, timeout: float = WAIT) -> list[Record]:
        deadline = time.monotonic() + timeout
        while len(found := self.stored(prefix, type_)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(found) >= count, f"{count} {type_} stored for {prefix} expected: {found}"
        return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("site")
    write(root / "elsewhere" / "index.html", "<!doctype html><title>elsewhere</title>x")
    write(root / "favicon.ico", b"")
    db_url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'records.db'}"
    with running_receiver(db_url, site_dir=root) as base:
        yield Served(base, root, db_url)


def by_time(rows: list[Record]) -> list[Record]:
    return sorted(rows, key=lambda row: (row["ts"], row["id"]))


# A small pushState router, as instant-loading themes have: it swaps the content and runs the
# head script again (the module must ignore the second copy).
ROUTER = """<script>
window.go = (path, replace) => {
  history[replace ? "replaceState" : "pushState"]({}, "", path);
  const copy = document.createElement("script");
  copy.textContent = document.querySelector("script[data-sitebeacon]").textContent;
  document.head.append(copy);
};
</script>"""


def test_spa_route_changes_are_visits_and_secrets_stay_home(served: Served, tab: Tab) -> None:
    url = served.add(Config(), head=ROUTER, name="app")
    tab.page.goto(url + "?email=a%40b.c&utm_source=news#access_token=xyz")
    served.wait(url, "pageview")
    time.sleep(0.3)
    tab.page.evaluate("go('a?email=a%40b.c&utm_source=news#access_token=xyz')")
    # scroll restoration: same path and kept parameters, another state and fragment: no visit
    tab.page.evaluate("history.replaceState({y: 1}, '', location.pathname + location.search)")
    tab.page.evaluate("go('a?utm_source=news&session=s3cr3t')")  # only a dropped one changed
    time.sleep(0.3)
    tab.page.evaluate("go('b')")
    time.sleep(0.3)
    tab.page.go_back()  # popstate back to a
    served.wait(url, "pageview", 4)
    # The module ran three more times (the router's copies) and installed nothing twice: the
    # counts below would double otherwise.
    assert tab.page.evaluate("document.head.querySelectorAll('script').length") == 5
    time.sleep(0.3)
    served.leave(tab)
    leaves = served.wait(url, "leave", 4)
    time.sleep(0.8)
    pageviews = by_time(served.stored(url, "pageview"))
    leaves = by_time(served.stored(url, "leave"))
    routes = [
        url + "?utm_source=news",
        url + "a?utm_source=news",
        url + "b",
        url + "a?utm_source=news",
    ]
    assert [row["url"] for row in pageviews] == routes
    assert [row["referrer"] for row in pageviews[1:]] == routes[:-1]
    assert [row["url"] for row in leaves] == routes  # one leave per visit, its own route
    assert len({row["id"] for row in leaves}) == 4
    assert all(row["data"]["visible_ms"] >= 200 for row in leaves)
    for row in served.stored(url):
        text = json.dumps(row)
        assert "email" not in text and "xyz" not in text and "s3cr3t" not in text, row


def test_spa_off_and_hash_mode(served: Served, tab: Tab) -> None:
    off = served.add(Config(spa="off"))
    tab.page.goto(off)
    served.wait(off, "pageview")
    tab.page.evaluate("history.pushState({}, '', 'x')")
    served.leave(tab)
    [leave] = served.wait(off, "leave")
    assert leave["url"] == off and len(served.stored(off, "pageview")) == 1

    hashed = served.add(Config(spa="hash", transport=("beacon",)))
    tab.page.goto(hashed + "#/one")
    served.wait(hashed, "pageview")
    tab.page.evaluate("location.hash = '#/two'")
    [_, second] = by_time(served.wait(hashed, "pageview", 2))
    assert second["url"] == hashed + "#/two" and second["referrer"] == hashed + "#/one"
    [first_leave] = served.wait(hashed, "leave")
    assert first_leave["url"] == hashed + "#/one"


def test_referrer_from_another_site_is_only_its_origin(served: Served, tab: Tab) -> None:
    url = served.add(Config())
    # 127.0.0.1 and localhost are two sites: the referrer's path and query stay there.
    other = served.base.replace("127.0.0.1", "localhost")
    write(served.root / "from" / "index.html", f'<a id=go href="{url}?x=1">go</a>')
    tab.page.goto(other + "/from/?token=abc")
    tab.page.click("#go")
    [pageview] = served.wait(url, "pageview")
    assert pageview["referrer"] == other + "/"
    assert pageview["url"] == url  # x is not a kept parameter


def test_keep_all_query_and_clip_keeps_escapes_whole(served: Served, tab: Tab) -> None:
    url = served.add(Config(keep_query=("*",), transport=("beacon",)))
    # A URL whose 2048th char falls inside a %XX escape.
    pad = "a" * (2048 - len(url) - len("?q=") - 1)
    tab.page.goto(f"{url}?q={pad}%40%40%40")
    [pageview] = served.wait(url, "pageview")
    assert pageview["url"] == f"{url}?q={pad}"  # the cut escape is dropped, not half kept
    short = served.add(Config(keep_query=("*",), transport=("beacon",)))
    tab.page.goto(short + "?a=1&b=2#frag")
    [row] = served.wait(short, "pageview")
    assert row["url"] == short + "?a=1&b=2"


# --- who is not a reader ----------------------------------------------------------------------


def test_ignored_visitors_send_nothing(served: Served, tab: Tab, tmp_path: Path) -> None:
    config = Config(events=("pageview", "leave", "outbound", "custom"))
    flagged = served.add(config)
    tab.page.goto(served.base + "/elsewhere/")
    tab.page.evaluate("localStorage.sitebeacon_ignore = '1'")
    tab.page.goto(flagged)
    tab.page.evaluate("window.sitebeacon.event('x', {})")  # still callable
    served.leave(tab)
    host = served.add(Config(ignore_hosts=("127.0.0.1",)))
    tab.page.evaluate("localStorage.removeItem('sitebeacon_ignore')")
    tab.page.goto(host)
    served.leave(tab)
    with_port = served.add(Config(ignore_hosts=(served.base.split("//")[1],)))  # host:port
    tab.page.goto(with_port)
    served.leave(tab)
    # A page opened from disk, posting to the receiver by absolute URL.
    local = write(
        tmp_path / "local.html",
        SCRIPT_IN_HEAD.format(
            module=build_module(Config(endpoint=served.base + "/collect"))
        ).replace("</script>", "</script>local"),
    )
    # (a receiver could refuse a file: page's Origin anyway, so count the attempts in the page)
    tab.page.add_init_script(
        "window.attempts = 0; for (const [o, k] of [[navigator, 'sendBeacon'], [window, 'fetch'],"
        " [window, 'fetchLater']]) { const f = o[k]; o[k] = (...a) => (attempts++, f && f(...a)); }"
    )
    tab.page.goto(local.as_uri())
    set_hidden(tab, True)
    assert tab.page.evaluate("attempts") == 0
    tab.page.goto(served.base + "/elsewhere/")
    # the same config on a flag-free page still sends, so the wait was long enough to notice
    control = served.add(config)
    tab.page.goto(control)
    served.wait(control, "pageview")
    time.sleep(0.5)
    assert served.stored(flagged) == [] and served.stored(host) == []
    assert served.stored(with_port) == []
    assert served.stored("file:") == []


# --- prerendering and background tabs ---------------------------------------------------------
# A real speculation-rules prerender does not activate under DevTools: Chromium fetches the page
# (Sec-Purpose: prefetch;prerender) but Preload.prerenderStatusUpdated reports
# "PrerenderingDisabledByDevTools", under Playwright (headless, and headed under xvfb, even after
# Page.setPrerenderingAllowed(true) on its own session) and over a raw CDP session that allowed it
# before Preload.enable; the click then loads the prefetched page with document.prerendering
# false. So these tests drive the states the page sees: document.prerendering / hidden set before
# the module runs, then the events that end them. A real background tab (raw CDP) is the last
# test of this file.

PRERENDERED = """
Object.defineProperty(document, "prerendering", {configurable: true, get: () => true});
Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
window.activate = () => {
  delete document.prerendering;
  delete document.hidden;
  document.dispatchEvent(new Event("prerenderingchange"));
};"""
BACKGROUND = """
Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
window.show = () => {
  delete document.hidden;
  document.dispatchEvent(new Event("visibilitychange"));
};
"""


def test_prerendered_page_sends_only_once_activated(served: Served, tab: Tab) -> None:
    config = Config(events=("pageview", "leave", "custom"))
    tab.page.add_init_script(PRERENDERED)
    never = served.add(config)
    tab.page.goto(never)
    tab.page.evaluate("window.sitebeacon.event('early', {})")
    time.sleep(0.5)
    assert served.stored(never) == []
    shown = served.add(config)
    tab.page.goto(shown)  # `never` goes away without being shown: nothing from it, ever
    tab.page.evaluate("window.sitebeacon.event('early', {})")
    time.sleep(0.5)
    assert served.stored(shown) == []
    tab.page.evaluate("activate()")
    served.wait(shown, "pageview")
    served.wait(shown, "early")  # an event from the prerender follows the page view
    served.leave(tab)
    served.wait(shown, "leave")
    time.sleep(0.5)
    assert served.stored(never) == []


def test_background_tab_sends_its_pageview_when_first_shown(served: Served, tab: Tab) -> None:
    tab.page.add_init_script(BACKGROUND)
    never = served.add(Config())
    tab.page.goto(never)
    time.sleep(0.3)
    later = served.add(Config())
    tab.page.goto(later)
    time.sleep(0.5)
    assert served.stored(later) == []
    tab.page.evaluate("show()")
    [pageview] = served.wait(later, "pageview")
    assert pageview["url"] == later
    time.sleep(0.3)
    served.leave(tab)
    [leave] = served.wait(later, "leave")
    assert leave["data"]["visible_ms"] >= 200
    assert served.stored(never) == []  # loaded hidden, never shown, closed: nothing


# --- nothing refused is lost -----------------------------------------------------------------

REFUSE_ALL = """
const realBeacon = navigator.sendBeacon.bind(navigator);
navigator.sendBeacon = (...args) => !window.refuse && realBeacon(...args);
window.fetchLater = () => { throw new DOMException("full", "QuotaExceededError"); };
const realFetch = window.fetch;
window.fetch = (...args) =>
  window.refuse ? Promise.reject(new TypeError("refused")) : realFetch(...args);
window.refuse = !sessionStorage.accept;
"""


def test_a_bad_event_name_is_refused_by_the_receiver_alone(served: Served, tab: Tab) -> None:
    # The module leaves the name to the receiver: it answers 400 naming the reason, stores
    # nothing of it, and the events around it (and a queued batch holding it) are stored.
    url = served.add(Config(events=("custom",), transport=("keepalive",)))
    tab.page.goto(url)
    with tab.page.expect_response(lambda response: response.request.method == "POST") as info:
        tab.page.evaluate("sitebeacon.event('Bad Name', {})")
    assert info.value.status == 400 and "type" in info.value.text()
    tab.page.evaluate("sitebeacon.event('good', {})")
    served.wait(url, "good")
    tab.page.evaluate(
        "localStorage.sitebeacon_queue = JSON.stringify([0, "
        "{v: 1, id: 'q1', type: 'Bad Name', url: location.href, ts: Date.now(), data: {}},"
        "{v: 1, id: 'q2', type: 'queued', url: location.href, ts: Date.now(), data: {}}])"
    )
    tab.page.reload()
    [queued] = served.wait(url, "queued")
    assert queued["id"] == "q2"
    time.sleep(0.5)
    assert {row["type"] for row in served.stored(url)} == {"good", "queued"}
    # What the page's developer sees: each refused request (the event, then the batch; a mixed
    # batch is answered 400 too) in the console, not a throw.
    tab.page.wait_for_timeout(300)  # (console messages arrive on the page's event loop)
    refused = "console: Failed to load resource: the server responded with a status of 400"
    assert tab.errors == [refused + " (Bad Request)"] * 2
    tab.errors.clear()


def test_rejected_keepalive_chains_to_the_next_transport(served: Served, tab: Tab) -> None:
    tab.page.add_init_script("window.fetch = () => Promise.reject(new TypeError('over budget'));")
    url = served.add(Config(transport=("keepalive", "beacon")))
    tab.page.goto(url)
    [pageview] = served.wait(url, "pageview")
    assert pageview["transport"] == "beacon"


def test_refused_records_wait_and_go_as_one_array_later(served: Served, tab: Tab) -> None:
    tab.page.add_init_script(REFUSE_ALL)
    url = served.add(Config(events=("pageview", "leave", "custom")))
    tab.page.goto(url)
    tab.page.evaluate("for (let i = 0; i < 3; i++) sitebeacon.event('queued', {i})")
    queue = tab.page.evaluate("JSON.parse(localStorage.sitebeacon_queue)")
    assert queue[0] == 0 and [rec["type"] for rec in queue[1:]] == ["pageview", *["queued"] * 3]
    time.sleep(0.5)
    assert served.stored(url) == []
    # The next load can send again: the queue goes as one JSON array body.
    tab.page.evaluate("sessionStorage.accept = 1")
    bodies: list[str] = []
    tab.page.on(
        "request",
        lambda request: (
            bodies.append(request.post_data or "") if request.method == "POST" else None
        ),
    )
    tab.page.reload()
    retried = served.wait(url, "queued", 3)
    assert all(row["data"]["retried"] == 1 for row in retried)
    assert sorted(row["data"]["i"] for row in retried) == [0, 1, 2]
    [first, second] = by_time(served.wait(url, "pageview", 2))
    assert first["data"] == {"retried": 1} and not second["data"]
    # the leave refused at the reload's pagehide waited too: five records in one array body
    [leave] = served.wait(url, "leave")
    assert leave["data"]["retried"] == 1 and leave["data"]["visible_ms"] > 0
    assert any(body.startswith("[") and body.count('"retried":1') == 5 for body in bodies)
    assert tab.page.evaluate("localStorage.sitebeacon_queue") is None


def test_queue_is_bounded_and_counts_what_it_dropped(served: Served, tab: Tab) -> None:
    tab.page.add_init_script(REFUSE_ALL)
    url = served.add(Config(events=("custom",)))
    tab.page.goto(url)
    tab.page.evaluate("for (let i = 0; i < 25; i++) sitebeacon.event('burst', {i})")
    queue = tab.page.evaluate("JSON.parse(localStorage.sitebeacon_queue)")
    assert queue[0] == 5 and len(queue) == 21  # 20 kept, 5 dropped and counted
    # by bytes too: 3 records of ~15 KB fill 32 KiB
    tab.page.evaluate("localStorage.removeItem('sitebeacon_queue')")
    tab.page.evaluate(
        "for (let i = 0; i < 3; i++) sitebeacon.event('big', {i, s: 'x'.repeat(15000)})"
    )
    queue = tab.page.evaluate("JSON.parse(localStorage.sitebeacon_queue)")
    assert queue[0] == 1 and len(queue) == 3
    # an old record (over 24 h) is left out of the next flush
    tab.page.evaluate(
        "const q = JSON.parse(localStorage.sitebeacon_queue);"
        "q[1].ts -= 25 * 3600 * 1000; localStorage.sitebeacon_queue = JSON.stringify(q);"
    )
    tab.page.evaluate("sessionStorage.accept = 1")
    tab.page.reload()
    [big] = served.wait(url, "big")
    assert big["data"]["i"] == 1 and big["data"]["retried"] == 1 and big["data"]["dropped"] == 1
    time.sleep(0.5)
    assert len(served.stored(url, "big")) == 1


def test_a_burst_of_big_events_is_stored_or_counted(served: Served, tab: Tab) -> None:
    # Twelve ~15 KB events at once overrun every in-flight budget: each is stored now, stored
    # from the queue at the next load, or counted as dropped there; none vanishes unseen.
    url = served.add(Config(events=("custom",)))
    tab.page.goto(url)
    tab.page.evaluate(
        "for (let i = 0; i < 12; i++) sitebeacon.event('burst', {i, s: 'x'.repeat(15000)})"
    )
    time.sleep(1.5)
    tab.page.reload()
    time.sleep(1.5)
    rows = served.stored(url, "burst")
    dropped = sum(row["data"].get("dropped", 0) for row in rows)
    assert len({row["data"]["i"] for row in rows}) + dropped == 12, [
        row["data"].get("i") for row in rows
    ]


def test_ids_are_time_first_from_getrandomvalues(served: Served, tab: Tab) -> None:
    tab.page.add_init_script("Math.random = () => { throw new Error('Math.random used'); };")
    url = served.add(Config(events=("pageview", "custom")))
    tab.page.goto(url)
    for _ in range(3):
        tab.page.evaluate("sitebeacon.event('tick', {})")
    rows = served.wait(url, "tick", 3) + served.stored(url, "pageview")
    ids = [row["id"] for row in rows]
    assert len(set(ids)) == 4 and all(ID_PATTERN.fullmatch(i) for i in ids)
    for row in rows:  # the id starts with its ts in base 36
        assert abs(int(row["id"][:8], 36) - row["ts"]) < 5_000


def test_custom_data_that_json_rejects_is_counted_without_it(served: Served, tab: Tab) -> None:
    url = served.add(Config(events=("custom",)))
    tab.page.goto(url)
    tab.page.evaluate("const a = {}; a.self = a; sitebeacon.event('cycle', a)")
    tab.page.evaluate("sitebeacon.event('big', {n: 10n})")
    assert served.wait(url, "cycle")[0]["data"] is None
    assert served.wait(url, "big")[0]["data"] is None


STUB = (
    "<script>window.sitebeacon=window.sitebeacon||{q:[],event(){this.q.push(arguments)}}</script>"
)


def test_external_script_replays_calls_queued_by_the_stub(served: Served, tab: Tab) -> None:
    config = Config(events=("pageview", "custom"), script_mode="external")
    path = f"/ext{next(served.pages)}/"
    write(served.root / path.strip("/") / "sitebeacon.js", build_module(config))
    write(
        served.root / path.strip("/") / "index.html",
        f"<!doctype html><head>{STUB}<script defer src=sitebeacon.js></script>"
        "<script>sitebeacon.event('early', {n: 1})</script></head><body>x",
    )
    url = served.base + path
    tab.page.goto(url)
    [early] = served.wait(url, "early")
    assert early["data"] == {"n": 1}
    served.wait(url, "pageview")


# --- links: downloads, own hosts, shadow roots, areas --------------------------------------------


def test_downloads_own_hosts_shadow_roots_and_areas(
    served: Served, elsewhere: Recorder, tab: Tab
) -> None:
    www = served.base.replace("127.0.0.1", "www.127.0.0.1")  # www and apex: the same site
    config = Config(
        transport=("beacon",),
        events=("pageview", "outbound", "download"),
        hosts=("localhost:" + served.base.rsplit(":", 1)[1],),
    )
    url = served.add(
        config,
        body=f'<a id=pdf href="/files/report.pdf?X-Signature=s3cr3t" target=_blank>pdf</a>'
        '<a id=html href="/files/page.html" target=_blank>html</a>'
        f'<a id=www href="{www}/y" target=_blank>www</a>'
        f'<a id=own href="{served.base.replace("127.0.0.1", "localhost")}/x" target=_blank>own</a>'
        f'<div id=host></div><map name=m><area id=area href="{elsewhere.base}/area" '
        'shape=rect coords="0,0,50,50" target=_blank></map><img usemap=#m width=50 height=50 '
        'src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        "<script>document.getElementById('host').attachShadow({mode: 'open'}).innerHTML = "
        f"'<a id=shadow href=\"{elsewhere.base}/shadow\" target=_blank>shadow</a>';</script>",
    )
    tab.page.goto(url)
    served.wait(url, "pageview")
    for selector in ("#pdf", "#html", "#own", "#www", "#host >> #shadow"):
        tab.page.click(selector)
    box = tab.page.locator("img").bounding_box()
    tab.page.mouse.click(box["x"] + 10, box["y"] + 10)  # on the image map's <area>
    outbound = served.wait(url, "outbound", 2)
    [download] = served.wait(url, "download")
    assert download["target"] == served.base + "/files/report.pdf"  # no signature stored
    assert sorted(row["target"] for row in outbound) == [
        elsewhere.base + "/area",
        elsewhere.base + "/shadow",
    ]
    time.sleep(0.5)
    assert len(served.stored(url, "outbound")) == 2 and len(served.stored(url, "download")) == 1


def test_a_failed_flush_keeps_the_queue_and_online_sends_it(served: Served, tab: Tab) -> None:
    tab.page.add_init_script(REFUSE_ALL)
    url = served.add(Config(events=("custom",)))
    tab.page.goto(url)
    tab.page.evaluate("sitebeacon.event('waits', {})")
    tab.page.reload()  # the flush at load is refused too: the record waits again
    tab.page.wait_for_function("localStorage.sitebeacon_queue?.includes('waits')")
    time.sleep(0.3)
    assert served.stored(url) == []
    tab.page.evaluate("window.refuse = false; dispatchEvent(new Event('online'))")
    [row] = served.wait(url, "waits")
    assert row["data"]["retried"] == 1
    # a queue that is not JSON (another script's) is replaced, and the module works on
    tab.page.evaluate("localStorage.sitebeacon_queue = '{not json'")
    tab.page.evaluate("sessionStorage.accept = 1")
    tab.page.reload()
    tab.page.evaluate("sitebeacon.event('after', {})")
    served.wait(url, "after")


@pytest.mark.parametrize("stored", ["5", "{}", "null", "[0, null, 7]", '"text"'])
def test_a_queue_of_another_shape_does_not_stop_the_module(
    served: Served, tab: Tab, stored: str
) -> None:
    # JSON that is not the queue's array (another script's key, an old version's) is replaced,
    # and everything after the load's flush is still set up: the page view, custom events, the
    # route changes (set up last), the leave.
    tab.page.add_init_script(f"localStorage.sitebeacon_queue = {json.dumps(stored)};")
    url = served.add(Config(events=("pageview", "leave", "custom")))
    tab.page.goto(url)
    served.wait(url, "pageview")
    tab.page.evaluate("sitebeacon.event('after', {})")
    served.wait(url, "after")
    tab.page.evaluate("history.pushState(null, '', 'sub')")
    assert len(served.wait(url, "pageview", 2)) == 2  # the route's own page view
    tab.page.goto(served.add(Config(events=())))
    assert len(served.wait(url, "leave", 2)) == 2


def test_a_real_background_tab_sends_when_first_shown(chromium: str, served: Served) -> None:
    # Over raw CDP (no Playwright focus emulation) a tab opened with background: true really
    # loads hidden, and Target.activateTarget really shows it.
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from sitebeacon.proof.engines.chromium import RawChromium

    shown, never = served.add(Config()), served.add(Config())

    async def drive() -> None:
        raw = RawChromium(chromium)
        await raw.start()
        try:
            context = (await raw.call("Target.createBrowserContext"))["browserContextId"]
            front = {"url": "about:blank", "browserContextId": context}
            await raw.call("Target.createTarget", front)
            tabs = {}
            for url in (shown, never):
                target = {**front, "url": url, "background": True, "newWindow": False}
                tabs[url] = (await raw.call("Target.createTarget", target))["targetId"]
            session = (
                await raw.call("Target.attachToTarget", {"targetId": tabs[shown], "flatten": True})
            )["sessionId"]
            state = {"expression": "document.readyState + ' ' + document.visibilityState"}
            for _ in range(100):
                answer = await raw.call("Runtime.evaluate", state, session)
                if answer["result"]["value"] == "complete hidden":
                    break
                await asyncio.sleep(0.1)
            assert answer["result"]["value"] == "complete hidden"
            await asyncio.sleep(1.0)
            assert served.stored(shown) == []  # loaded, but never seen yet
            await raw.call("Target.activateTarget", {"targetId": tabs[shown]})
            deadline = time.monotonic() + WAIT
            while not served.stored(shown, "pageview") and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await raw.call("Target.closeTarget", {"targetId": tabs[never]})  # closed unseen
            await asyncio.sleep(1.0)
        finally:
            await raw.close()

    # Its own thread: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, drive()).result()
    assert len(served.stored(shown, "pageview")) == 1
    assert served.stored(never) == []
