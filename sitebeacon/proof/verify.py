"""`sitebeacon verify`: leave a built site in nine ways in real browsers and check what arrived.

The proof has to come from the receiver's store, not from the browser: Chromium reports
requests that never reached a server, and says nothing of fetchLater requests at all. So the
site is served on loopback together with a real receiver on a temporary SQLite file, and each
scenario's records are read back from that file and compared with what the configuration
promises in that engine (`expected_records`). The scenarios are `proof.scenarios`; the
browsers, `proof.engines`; the pages are read with the injector's own scanner and rules.
"""

from __future__ import annotations

import asyncio
import html
import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from sitebeacon.config import Config
from sitebeacon.errors import SitebeaconError
from sitebeacon.proof.engines import FEATURES, LABELS, locate, make_engine
from sitebeacon.proof.engines.base import Engine, Outcome, SitePlan
from sitebeacon.proof.scenarios import (
    ALL_SCENARIOS,
    BY_NUMBER,
    OUTBOUND_FALLBACK,
    SHUTDOWN_NOTE,
    Scenario,
    scenario,
)
from sitebeacon.protocol import VERIFY_PARAM
from sitebeacon.site import inject
from sitebeacon.site.generate import template_context
from sitebeacon.site.htmlscan import scan_page

DEAD_PAGE_NOTE = (
    "leave after a crash or a closed browser arrives only when fetchlater is among the"
    " transports (the module then arms the leave record with fetchLater ahead of time)"
)
NO_FETCHLATER_NOTE = (
    "{engine} has no fetchLater, so nothing is armed ahead of time: a leave arrives only if the"
    " browser still runs the page's events"
)
NO_TRANSPORT_NOTE = (
    "{engine} has none of the configured transports ({transports}): the module cannot send"
)
NO_PING_NOTE = "{engine} sends no <a ping> by default (browser.send_pings is off)"

DELIVERY_TIMEOUT = 10.0  # seconds to wait for the records a scenario must deliver
SETTLE = 0.6  # then this long for late copies (duplicates) and records not required
THROTTLED_FACTOR = 4  # both, under --throttle (Slow 3G adds 2 s to every request)
POLL = 0.05
MARK_PARAM = VERIFY_PARAM  # also kept in a ping's Ping-From by the receiver
# A link of each kind, to ask `inject` whether it would give such a link ping=.
SAMPLE_HREFS = {"local": "/", "outbound": OUTBOUND_FALLBACK}


@dataclass(frozen=True)
class Expected:
    """`count` rows of `type` (of which `count` carried by `transport`, when given)."""

    type: str
    count: int
    transport: str | None = None
    required: bool = True
    why: str = ""

    def label(self) -> str:
        text = self.type + (f"/{self.transport}" if self.transport else "")
        text += f" x{self.count}" if self.count > 1 else ""
        return text if self.required else f"({text})"


def engine_features(engine: str) -> frozenset[str]:
    """What an engine offers that changes the expectations ("fetchlater", "ping")."""
    if engine not in FEATURES:
        raise ValueError(f"no engine {engine}")
    return FEATURES[engine]


def gets_ping(config: Config, kind: str) -> bool:
    """Whether `build`/`inject` give a link of `kind` ("local", "outbound") ping= under
    `config`: asked of the injector itself, on a one-link page."""
    if config.ping_links == "none":
        return False
    page = f'<a href="{SAMPLE_HREFS[kind]}">'.encode()
    return b" ping=" in inject.inject_page(page, b"", config.endpoint, config.ping_links)


def expected_records(
    config: Config,
    number: int,
    *,
    link_has_ping: bool | None = None,
    engine: str = "chromium",
) -> list[Expected]:
    """What the receiver must hold about the start page after scenario `number` in `engine`.

    `link_has_ping`: whether the link the scenario clicks carries ping= (read from the page by
    `run_verify`; derived from `config.ping_links` when not given).
    """
    item = scenario(number)
    features = engine_features(engine)
    visits = item.visits
    label = LABELS[engine]
    # Nothing the module sends can arrive when the engine has none of its transports.
    mute = not any(transport in features for transport in config.transport)
    mute_why = NO_TRANSPORT_NOTE.format(engine=label, transports=", ".join(config.transport))
    expected: list[Expected] = []
    if "pageview" in config.events:
        expected.append(Expected("pageview", visits, required=not mute, why=mute_why * mute))
    if "leave" in config.events:
        armed = template_context(config)["arming"] and "fetchlater" in features
        if mute:
            expected.append(Expected("leave", visits, required=False, why=mute_why))
        elif item.dead_page and not armed:
            why = DEAD_PAGE_NOTE
            if "fetchlater" not in features:
                why = NO_FETCHLATER_NOTE.format(engine=label)
            expected.append(Expected("leave", 1, required=False, why=why))
        else:
            expected.append(Expected("leave", visits))
    if item.clicks is not None:
        pinged = gets_ping(config, item.clicks) if link_has_ping is None else link_has_ping
        if pinged and "ping" not in features:
            why = NO_PING_NOTE.format(engine=label)
            expected.append(Expected("outbound", 1, transport="ping", required=False, why=why))
        elif pinged:
            expected.append(Expected("outbound", 1, transport="ping"))
        elif item.clicks == "outbound" and "outbound" in config.events:
            expected.append(Expected("outbound", 1, required=not mute, why=mute_why * mute))
    return expected


def compare(
    expected: Sequence[Expected], rows: Sequence[dict[str, Any]]
) -> tuple[list[str], list[str], list[str]]:
    """(missing, duplicates, unexpected), each a list of short descriptions.

    Records are keyed by id, so a repeat of one record can never add a row: more rows of a
    type than visits means the client sent one visit's record under several ids.
    """
    missing: list[str] = []
    duplicates: list[str] = []
    by_type: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_type.setdefault(row["type"], []).append(row)
    for item in expected:
        found = by_type.get(item.type, [])
        carried = [r for r in found if item.transport is None or r["transport"] == item.transport]
        if item.required and len(carried) < item.count:
            missing.append(
                f"{item.type}"
                + (f"/{item.transport}" if item.transport else "")
                + f" ({len(carried)} of {item.count})"
            )
        if len(found) > item.count:
            transports = ", ".join(str(r["transport"]) for r in found)
            duplicates.append(f"{item.type}: {len(found)} rows for {item.count} ({transports})")
    known = {item.type for item in expected}
    unexpected = [f"{row['type']}/{row['transport']}" for row in rows if row["type"] not in known]
    return missing, duplicates, unexpected


@dataclass
class ScenarioResult:
    number: int
    name: str
    url: str
    expected: list[Expected]
    stored: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (
            self.missing or self.duplicates or self.unexpected or self.failures or self.page_errors
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "name": self.name,
            "ok": self.ok,
            "url": self.url,
            "expected": [asdict(item) for item in self.expected],
            "stored": [
                {
                    key: row[key]
                    for key in (
                        "type",
                        "transport",
                        "seq",
                        "content_type",
                        "fetch_mode",
                        "target",
                        "data",
                    )
                }
                for row in self.stored
            ],
            "missing": self.missing,
            "duplicates": self.duplicates,
            "unexpected": self.unexpected,
            "failures": self.failures,
            "notes": self.notes,
            "page_errors": self.page_errors,
            "console_errors": self.console_errors,
            "seconds": round(self.seconds, 2),
        }


@dataclass
class VerifyReport:
    site: str
    config: Config
    browser: str
    throttle: str | None
    receiver: str
    notes: list[str] = field(default_factory=list)
    scenarios: list[ScenarioResult] = field(default_factory=list)
    engine: str = "chromium"
    not_driven: dict[int, str] = field(default_factory=dict)  # scenario -> why not

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.scenarios)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "site": self.site,
            "config": {
                "source": self.config.source,
                "endpoint": self.config.endpoint,
                "transport": list(self.config.transport),
                "encoding": self.config.encoding,
                "events": list(self.config.events),
                "ping_links": self.config.ping_links,
                "script_mode": self.config.script_mode,
            },
            "engine": self.engine,
            "browser": self.browser,
            "throttle": self.throttle,
            "receiver": self.receiver,
            "notes": self.notes,
            "scenarios": [result.to_dict() for result in self.scenarios],
            "not_driven": [
                {"number": number, "name": BY_NUMBER[number].name, "why": why}
                for number, why in self.not_driven.items()
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def table(self) -> str:
        config = self.config
        lines = [
            f"sitebeacon verify {self.site}",
            f"  config {config.source}: transport {' > '.join(config.transport)},"
            f" encoding {config.encoding}, events {', '.join(config.events) or '(none)'},"
            f" ping.links {config.ping_links}",
            f"  engine {self.engine}: browser {self.browser}"
            + (f", throttled: {self.throttle}" if self.throttle else ""),
            f"  receiver {self.receiver} (temporary SQLite store)",
        ]
        lines += [f"  note: {note}" for note in self.notes]
        rows = [
            (
                "#",
                "scenario",
                "expected",
                "stored (type/transport)",
                "missing",
                "duplicates",
                "result",
            )
        ]
        for result in self.scenarios:
            rows.append(
                (
                    str(result.number),
                    result.name,
                    ", ".join(item.label() for item in result.expected) or "-",
                    ", ".join(f"{r['type']}/{r['transport']}" for r in result.stored) or "-",
                    "; ".join(result.missing) or "-",
                    "; ".join(result.duplicates) or "-",
                    "ok" if result.ok else "FAIL",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines.append("")
        for row in rows:
            lines.append(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
        details = []
        for result in self.scenarios:
            for label, items in (
                ("failed", result.failures),
                ("unexpected", result.unexpected),
                ("page error", result.page_errors),
                ("note", result.notes),
            ):
                details += [f"  {result.number}: {label}: {item}" for item in items]
            details += [
                f"  {result.number}: note: {item.why}"
                for item in result.expected
                if not item.required and item.why
            ]
        details += [
            f"  {number}: not driven in {self.engine}: {why}"
            for number, why in self.not_driven.items()
        ]
        if details:
            lines += ["", *details]
        lines += ["", f"{'ok' if self.ok else 'FAILED'}: {self._summary()}", ""]
        return "\n".join(lines)

    def _summary(self) -> str:
        failed = [str(result.number) for result in self.scenarios if not result.ok]
        total = len(self.scenarios)
        skipped = f" ({len(self.not_driven)} not driven)" if self.not_driven else ""
        if not failed:
            return (
                f"{total} of {total} scenarios delivered what the configuration promises{skipped}"
            )
        return f"scenario(s) {', '.join(failed)} of {total} did not{skipped}"


# --- the site ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageLinks:
    """One page of the site with the links scenarios can follow."""

    path: str  # URL path, e.g. "/about/"
    internal: tuple[tuple[str, str, bool], ...]  # (href as written, target path, has ping=)
    outbound: tuple[tuple[str, bool], ...]  # (href, has ping=)
    injected: bool
    body: bytes


def url_path(site_dir: Path, page: Path) -> str:
    """The URL path a static server gives a page file: about/index.html -> /about/."""
    relative = page.relative_to(site_dir).as_posix()
    if relative == "index.html" or relative.endswith("/index.html"):
        relative = relative[: -len("index.html")]
    return "/" + relative


def _target_file(site_dir: Path, path: str) -> Path | None:
    local = site_dir / path.lstrip("/")
    for candidate in (local, local / "index.html", local.with_suffix(".html")):
        if candidate.is_file():
            return candidate
    return None


def _href_text(raw: bytes) -> str:
    """An href as the DOM reads it (character references decoded, spaces around stripped)."""
    return html.unescape(raw.decode("utf-8", "replace")).strip()


def read_page_links(site_dir: Path, page: Path) -> PageLinks:
    """The page's links, found and classified as `inject` finds and classifies them."""
    body = page.read_bytes()
    scanned = body
    codec = inject.UTF16_BOMS.get(body[:2])
    if codec is not None:  # a UTF-16 page: scan it as UTF-8, as inject does
        scanned = body[2:].decode(codec, "replace").encode("utf-8")
    start = 3 if scanned.startswith(inject.UTF8_BOM) else 0
    scan = scan_page(scanned, links="every", start=start)
    path = url_path(site_dir, page)
    origin = "http://site.invalid"
    internal: list[tuple[str, str, bool]] = []
    outbound: list[tuple[str, bool]] = []
    for link in scan.links:
        kind = inject.link_kind(link.href)
        if kind == "none" or link.href is None:
            continue
        href = _href_text(link.href)
        if kind == "outbound":
            outbound.append((href, link.has_ping))
            continue
        target = urlsplit(urljoin(origin + path, href)).path
        if target != path and _target_file(site_dir, target) is not None:
            internal.append((href, target, link.has_ping))
    return PageLinks(path, tuple(internal), tuple(outbound), bool(scan.scripts), body)


def find_pages(site_dir: Path) -> list[Path]:
    """The site's pages as `inject` finds them, index.html first (what `/` shows)."""
    pages = [Path(page) for page in inject.find_pages(site_dir)]
    top = site_dir.absolute()
    return sorted(pages, key=lambda p: (p.relative_to(top) != Path("index.html"), str(p)))


def plan_site(site_dir: Path, base: str = "") -> tuple[SitePlan, PageLinks]:
    """Pick the start page (index first, then the first with both kinds of link) and links."""
    pages = find_pages(site_dir)
    if not pages:
        raise SitebeaconError(f"{site_dir}: no HTML pages")
    scanned = [read_page_links(site_dir, page) for page in pages]
    if not any(page.injected for page in scanned):
        raise SitebeaconError(
            f"{site_dir}: no page carries the sitebeacon script; run `sitebeacon inject"
            f" {site_dir}` (or `sitebeacon build`) first"
        )
    candidates = [page for page in scanned if page.injected]
    start = next((p for p in candidates if p.internal and p.outbound), None)
    start = start or next((p for p in candidates if p.internal), None) or candidates[0]
    if start.internal:
        internal_href, other_path, _ = start.internal[0]
    else:
        others = [page.path for page in scanned if page.path != start.path]
        if not others:
            raise SitebeaconError(f"{site_dir}: the scenarios need at least two pages")
        internal_href, other_path = None, others[0]
    outbound_href = start.outbound[0][0] if start.outbound else None
    return SitePlan(base, start.path, other_path, internal_href, outbound_href), start


# --- running -------------------------------------------------------------------------------


RowSource = Callable[[], list[dict[str, Any]]]


def rows_about(rows: Iterable[dict[str, Any]], url: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["url"] == url]


async def wait_for_rows(
    read: RowSource, url: str, expected: Sequence[Expected], *, timeout: float, settle: float
) -> list[dict[str, Any]]:
    """Poll the store until every required record about `url` is there (or `timeout`), then
    `settle` seconds more, so late copies show up as duplicates; return the rows."""
    deadline = time.monotonic() + timeout
    while True:
        rows = rows_about(read(), url)
        missing, _, _ = compare(expected, rows)
        if not missing or time.monotonic() > deadline:
            break
        await asyncio.sleep(POLL)
    await asyncio.sleep(settle)
    return rows_about(read(), url)


def make_ready(
    read: RowSource, config: Config, timeout: float
) -> Callable[[str, int], Awaitable[None]]:
    """The drivers' `ready`: a page is settled once its n-th page view is stored."""

    async def ready(url: str, pageviews: int) -> None:
        if "pageview" not in config.events:
            await asyncio.sleep(0.3)
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = rows_about(read(), url)
            if sum(1 for row in rows if row["type"] == "pageview") >= pageviews:
                return
            await asyncio.sleep(POLL)

    return ready


def scenario_url(plan: SitePlan, token: str, number: int) -> str:
    return f"{plan.url(plan.start_path)}?{MARK_PARAM}={token}-{number}"


def not_driven(engine: str, scenarios: Sequence[int]) -> dict[int, str]:
    """The scenarios among `scenarios` that `engine` cannot drive, with why not."""
    return {
        number: BY_NUMBER[number].cannot[engine]
        for number in scenarios
        if engine in BY_NUMBER[number].cannot
    }


@dataclass
class EngineRun:
    """The scenarios one engine drove, and the ones it could not."""

    engine: str
    browser: str  # the executable and version, as the report shows them
    results: list[ScenarioResult]
    not_driven: dict[int, str]


async def run_scenarios(
    plan: SitePlan,
    config: Config,
    read: RowSource,
    *,
    engine: str = "chromium",
    browser: str | None = None,
    scenarios: Sequence[int] = ALL_SCENARIOS,
    throttle: str | None = None,
    ping_on: dict[int, bool] | None = None,
    timeout: float = DELIVERY_TIMEOUT,
) -> EngineRun:
    """Drive `scenarios` in `engine` against a served site; compare what the store `read` holds.

    `browser`: Chromium's executable; `ping_on`: whether the link scenario N clicks carries
    ping= (see `link_pings`); `timeout`: seconds to wait for a scenario's records (times 4
    under a throttle).
    """
    factor = (THROTTLED_FACTOR if throttle else 1) * timeout / DELIVERY_TIMEOUT
    token = secrets.token_hex(4)
    results = []
    ready = make_ready(read, config, DELIVERY_TIMEOUT * factor)
    skipped = not_driven(engine, scenarios)
    driver = make_engine(engine, ready, browser=browser, throttle=throttle)
    async with driver:
        for number in scenarios:
            if number in skipped:
                continue
            item = BY_NUMBER[number]
            expected = expected_records(
                config, number, link_has_ping=(ping_on or {}).get(number), engine=engine
            )
            result = await _run_one(driver, read, plan, token, item, expected, factor)
            if item.shutdown_retry and result.missing and not result.failures:
                lost = "; ".join(result.missing)
                result = await _run_one(driver, read, plan, token + "r", item, expected, factor)
                result.notes.append(
                    f"first attempt lost {lost}; this is the second attempt ({SHUTDOWN_NOTE})"
                )
            results.append(result)
    return EngineRun(engine, driver.version(), results, skipped)


async def _run_one(
    driver: Engine,
    read: RowSource,
    plan: SitePlan,
    token: str,
    item: Scenario,
    expected: list[Expected],
    factor: float,
) -> ScenarioResult:
    url = scenario_url(plan, token, item.number)
    result = ScenarioResult(item.number, item.name, url, expected)
    started = time.monotonic()
    outcome = Outcome()
    try:
        async with driver.open(item, url, outcome) as tab:
            await item.drive(tab, plan, outcome, driver.ready)
            result.stored = await wait_for_rows(
                read, url, expected, timeout=DELIVERY_TIMEOUT * factor, settle=SETTLE * factor
            )
    except SitebeaconError:
        raise
    except Exception as error:  # the browser did not do what the scenario needs
        message = str(error).strip().splitlines()
        outcome.failures.append(f"{type(error).__name__}: " + (message[0] if message else ""))
        result.stored = rows_about(read(), url)
    result.missing, result.duplicates, result.unexpected = compare(expected, result.stored)
    result.failures += outcome.failures
    result.notes += outcome.notes
    result.page_errors += outcome.page_errors
    result.console_errors += outcome.console_errors
    result.seconds = time.monotonic() - started
    return result


def keeps_mark(config: Config) -> bool:
    """Whether the module keeps MARK_PARAM in stored URLs (scenarios are told apart by it)."""
    return config.keep_query == ("*",) or MARK_PARAM in config.keep_query


def _local_copy(site: Path, config: Config, workdir: Path) -> tuple[Path, Config]:
    """A copy of the site whose records go to a path on its own origin."""
    from sitebeacon.site.generate import build_module
    from sitebeacon.site.inject import inject_site, ping_attribute

    local = config.with_endpoint(urlsplit(config.endpoint).path or "/collect")
    if not keeps_mark(config):
        local = replace(local, keep_query=(*config.keep_query, MARK_PARAM))
    copy = workdir / "site"
    shutil.copytree(site, copy, symlinks=False)
    inject_site(copy, local, build_module(local))
    if config.ping_links != "none":  # ping= attributes already there keep their old target
        old, new = ping_attribute(config.endpoint), ping_attribute(local.endpoint)
        for page in copy.rglob("*.htm*"):
            body = page.read_bytes()
            if old in body:
                page.write_bytes(body.replace(old, new))
    return copy, local


def run_verify(
    site: Path,
    config: Config,
    *,
    engines: Sequence[str] = ("chromium",),
    browser: str | None = None,
    throttle: str | None = None,
    scenarios: Sequence[int] = ALL_SCENARIOS,
) -> list[VerifyReport]:
    """Serve `site` with a receiver on a temporary store and run the scenarios against it in
    each of `engines`, one after another; a report per engine."""
    from sitebeacon.collect.server import running_receiver
    from sitebeacon.collect.stores import open_store

    for name in engines:
        locate(name, browser, throttle)  # a missing browser stops everything before it starts
    if not site.is_dir():
        raise SitebeaconError(f"{site}: no such directory")
    for number in scenarios:
        if number not in BY_NUMBER:
            raise SitebeaconError(f"no scenario {number}; scenarios are 1-{len(BY_NUMBER)}")
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sitebeacon-verify-") as temp:
        workdir = Path(temp)
        serve_dir, local = site, config
        if not config.endpoint.startswith("/"):
            serve_dir, local = _local_copy(site, config, workdir)
            notes.append(
                f"the site sends to {config.endpoint}; verify served a copy re-injected with"
                f" endpoint {local.endpoint} on its own origin, so records reach its receiver"
            )
        elif not keeps_mark(config):
            # privacy.keep_query drops unknown parameters from stored URLs, and verify tells
            # its scenarios apart by one: a copy whose module keeps it, otherwise the same.
            serve_dir, local = _local_copy(site, config, workdir)
        plan, start = plan_site(serve_dir)
        notes += _module_notes(config, local, start)
        db_url = f"sqlite:///{workdir / 'verify.db'}"
        path = urlsplit(local.endpoint).path
        with running_receiver(db_url, path=path, site_dir=serve_dir) as base:
            plan = replace(plan, base=base)
            store = open_store(db_url)

            async def each_engine() -> list[EngineRun]:
                return [
                    await run_scenarios(
                        plan,
                        local,
                        store.records,
                        engine=name,
                        browser=browser,
                        scenarios=scenarios,
                        throttle=throttle,
                        ping_on=link_pings(start, plan),
                    )
                    for name in engines
                ]

            try:
                runs = asyncio.run(each_engine())
            finally:
                store.close()
    return [
        VerifyReport(
            site=str(site),
            config=config,
            browser=run.browser,
            throttle=throttle,
            receiver=f"{base}{path}",
            notes=notes,
            scenarios=run.results,
            engine=run.engine,
            not_driven=run.not_driven,
        )
        for run in runs
    ]


def link_pings(start: PageLinks, plan: SitePlan) -> dict[int, bool]:
    """Whether the link each clicking scenario follows carries ping=, read from the page."""
    internal = next((ping for href, _, ping in start.internal if href == plan.internal_href), False)
    outbound = next((ping for href, ping in start.outbound if href == plan.outbound_href), False)
    return {
        item.number: internal if item.clicks == "local" else outbound
        for item in BY_NUMBER.values()
        if item.clicks is not None
    }


def _module_notes(config: Config, local: Config, start: PageLinks) -> list[str]:
    """Say so when the pages carry a module other than the one `config` produces."""
    if config.script_mode != "inline":
        return []
    from sitebeacon.site.generate import build_module
    from sitebeacon.site.inject import inline_script_tag

    if inline_script_tag(build_module(local)) in start.body:
        return []
    return [
        f"the start page's sitebeacon script differs from the module built for"
        f" {config.source}; expectations follow that configuration (rebuild the site with it)"
    ]
