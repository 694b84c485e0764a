"""The ways a reader leaves a page, in order: one registry for `verify`, the tests and the bench.

Each `Scenario` holds everything about one way of leaving: its number and name, how many visits
of the start page it ends, which link it clicks, whether any page event runs at all, what the
engine must provide (a browser of its own, a tab that really hides), which engines cannot
drive it and why, and the function that drives it, written once against `engines.base.Tab`.
Adding a scenario or an engine is a change here and nowhere else.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from sitebeacon.proof.engines.base import Outcome, Ready, SitePlan, Tab

# Set on the page before it is left in scenario 7: still there after going back means the very
# same document came back from the back-forward cache.
BFCACHE_MARK = "__sitebeaconVerifyMark"
# How long scenario 6 keeps the page hidden before closing it.
HIDDEN_DWELL = 0.5
# Scenario 2 adds a link to this address when the start page has no outbound link.
OUTBOUND_FALLBACK = "https://outbound.sitebeacon.invalid/"

Drive = Callable[[Tab, SitePlan, Outcome, Ready], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    number: int
    name: str
    drive: Drive
    visits: int = 1  # visits of the start page it ends: a reload or bfcache restore starts one
    clicks: str | None = None  # "local" or "outbound": the link it clicks (ping= sends a record)
    dead_page: bool = False  # no page event runs: only a record handed over beforehand survives
    shutdown_retry: bool = False  # one more attempt when a record flushed at exit was lost
    own_browser: bool = False  # it closes the browser, so it gets one of its own
    hides: bool = False  # the tab must really become hidden when another comes in front
    cannot: Mapping[str, str] = field(default_factory=dict)  # engine -> why it cannot drive it


async def _follow_link(tab: Tab, plan: SitePlan, outcome: Outcome) -> None:
    """Follow the start page's link to another page (by script when it has none); wait for it."""
    if plan.internal_href is None:
        outcome.notes.append("no link to another page: navigated by script instead")
        await tab.evaluate(f"location.href = {_js(plan.url(plan.other_path))}")
    else:
        await tab.click(plan.internal_href)
    await tab.wait_url(lambda now: now != tab.url)


def _js(value: str) -> str:
    return json.dumps(value)


async def click_link(tab: Tab, plan: SitePlan, outcome: Outcome, ready: Ready) -> None:
    await _follow_link(tab, plan, outcome)
    await tab.close()


async def click_outbound(tab: Tab, plan: SitePlan, outcome: Outcome, ready: Ready) -> None:
    href = plan.outbound_href
    if href is None:
        href = OUTBOUND_FALLBACK
        outcome.notes.append(f"no outbound link on the page: added one to {href}")
        await tab.evaluate(
            f"""(() => {{ const a = document.createElement("a"); a.href = {_js(href)};
            a.textContent = "outbound"; document.body.prepend(a) }})()"""
        )
    await tab.click(href)
    # Nothing but loopback resolves: the navigation ends on the engine's error page.
    try:
        await tab.wait_url(lambda now: now != tab.url, loaded=False)
    except Exception:
        outcome.failures.append("clicking the outbound link did not navigate")
    await tab.close()


async def script_navigation(tab: Tab, plan: SitePlan, outcome: Outcome, ready: Ready) -> None:
    await tab.evaluate(f"location.href = {_js(plan.url(plan.other_path))}")
    await tab.wait_url(lambda now: now != tab.url)
    await tab.close()


async def reload(tab: Tab, plan: SitePlan, outcome: Outcome, ready: Ready) -> None:
    await tab.reload()
    await ready(tab.url, 2)
    await tab.close()


async def close_tab(tab: Tab, plan: SitePlan, outcome: Outcome, ready: Ready) -> None:
    await tab.close()


async def hide_then_close(tab: Tab, plan: SitePlan, outcome: Outcome, ready: Ready) -> None:
    visibility = await tab.hide()
    if visibility == "hidden":
        outcome.notes.append(f"hidden by {tab.hidden_by} (visibilityState hidden)")
    else:
        outcome.failures.append(f"the page did not become hidden ({visibility})")
    await asyncio.sleep(HIDDEN_DWELL)  # the reader looks at the other tab a while
    await tab.close()


async def back_forward_cache(tab: Tab, plan: SitePlan, outcome: Outcome, ready: Ready) -> None:
    await tab.evaluate(f"window.{BFCACHE_MARK} = 1")
    await _follow_link(tab, plan, outcome)
    await tab.back()
    await tab.wait_url(lambda now: now == tab.url, loaded=False)
    restored = await tab.evaluate(f"window.{BFCACHE_MARK} === 1")
    if restored:
        outcome.notes.append("came back from the back-forward cache (same document)")
    else:
        outcome.failures.append("the page was not restored from the back-forward cache")
    await ready(tab.url, 2)
    await tab.close()


async def renderer_crash(tab: Tab, plan: SitePlan, outcome: Outcome, ready: Ready) -> None:
    if not await tab.crash():
        outcome.failures.append("the renderer did not crash")


async def browser_closed(tab: Tab, plan: SitePlan, outcome: Outcome, ready: Ready) -> None:
    await tab.close_browser()


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(1, "click a link to another page of the site", click_link, clicks="local"),
    Scenario(2, "click an outbound link", click_outbound, clicks="outbound"),
    Scenario(3, "location.href navigation from script", script_navigation),
    Scenario(4, "reload", reload, visits=2),
    Scenario(5, "close the tab", close_tab),
    Scenario(6, "hide the tab (another tab in front), then close it", hide_then_close, hides=True),
    Scenario(
        7,
        "leave and come back through the back-forward cache, then close",
        back_forward_cache,
        visits=2,
        clicks="local",
    ),
    Scenario(8, "renderer crash (its process killed)", renderer_crash, dead_page=True),
    Scenario(
        9,
        "the browser closed without closing the page",
        browser_closed,
        dead_page=True,
        # Chromium sometimes exits before a request it flushes at shutdown is written: it
        # connects, then exits before writing (none in 30 closes on a quiet machine, 2 in 30
        # with the cores busy, even for a page doing nothing but one fetchLater; see README
        # "Delivery"), so this scenario gets one more attempt, and the report says so.
        shutdown_retry=True,
        own_browser=True,
    ),
)
BY_NUMBER: dict[int, Scenario] = {scenario.number: scenario for scenario in SCENARIOS}
ALL_SCENARIOS: tuple[int, ...] = tuple(BY_NUMBER)
SHUTDOWN_NOTE = "the browser can exit before writing a request it flushes at shutdown"


def scenario(number: int) -> Scenario:
    """The scenario numbered `number` (ValueError when there is none)."""
    try:
        return BY_NUMBER[number]
    except KeyError:
        raise ValueError(f"no scenario {number}") from None
