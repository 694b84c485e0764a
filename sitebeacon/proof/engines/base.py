"""The one interface every browser engine's driver offers the scenarios.

A scenario (`sitebeacon.proof.scenarios`) is written once against `Tab`: click a link, run a
script, reload, go back, hide, close, crash, close the browser. Each engine module says how its
browser does that: Chromium through Playwright (plus raw CDP where Playwright cannot),
Firefox through WebDriver BiDi, WebKitGTK through W3C WebDriver. Drivers only report what the
browser did (`Outcome`); what the receiver should then hold is `verify.py`'s business.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sitebeacon.proof.scenarios import Scenario

Ready = Callable[[str, int], Awaitable[None]]
"""`ready(url, pageviews)`: wait until the page at `url` has settled (its n-th page view stored)."""

POLL = 0.05


@dataclass(frozen=True)
class SitePlan:
    """Where the scenarios go: the page they start on and the links they follow."""

    base: str  # http://127.0.0.1:PORT
    start_path: str  # the page every scenario starts on, e.g. "/about/"
    other_path: str  # another page of the site (scenarios 1, 3, 7)
    internal_href: str | None  # the href, as written, of a link on the start page to other_path
    outbound_href: str | None  # the href of a link on the start page to another origin

    def url(self, path: str) -> str:
        return self.base + path


@dataclass
class Outcome:
    """What the browser did in one scenario, besides the requests it sent."""

    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # the scenario did not happen as meant
    page_errors: list[str] = field(default_factory=list)  # exceptions seen by the page
    console_errors: list[str] = field(default_factory=list)


def link_selector(href: str) -> str:
    return "a[href=" + json.dumps(href) + "]"


class DriverError(Exception):
    """The browser or its driver did not do what was asked (a scenario failure, not a crash)."""


class Tab(ABC):
    """One page of a browser, opened on a scenario's start URL and loaded."""

    hidden_by = "another tab in front"  # how `hide` hides it, for the report

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout  # seconds for one navigation

    @abstractmethod
    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""

    @abstractmethod
    async def click(self, href: str) -> None:
        """A real (trusted) mouse click on the first link written `href=`; returns at once."""

    @abstractmethod
    async def reload(self) -> None:
        """Reload and wait for the load event."""

    @abstractmethod
    async def back(self) -> None:
        """One step back in history (without waiting for a load: bfcache restores fire none)."""

    @abstractmethod
    async def hide(self) -> str:
        """Hide the page as a reader does (another tab or window in front); its visibilityState."""

    @abstractmethod
    async def close(self) -> None:
        """Close the tab as a reader does (page events run)."""

    @abstractmethod
    async def crash(self) -> bool:
        """Crash the process rendering the page (no page event runs); whether it happened."""

    @abstractmethod
    async def close_browser(self) -> None:
        """Close the whole browser while the page is still open."""

    async def location(self) -> tuple[str, str]:
        """(location.href, document.readyState); raises while a navigation is in between."""
        value = await asyncio.wait_for(
            self.evaluate("[location.href, document.readyState]"), self.timeout
        )
        return str(value[0]), str(value[1])

    async def wait_url(self, accept: Callable[[str], bool], *, loaded: bool = True) -> str:
        """Poll until the page's URL passes `accept` (and it has loaded, when `loaded`)."""
        deadline = time.monotonic() + self.timeout
        last: object = None
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # navigating: the old document is gone
                href, state = await self.location()
                last = href
                if accept(href) and (not loaded or state == "complete"):
                    return href
            await asyncio.sleep(POLL * 2)
        raise DriverError(f"the page did not get there in {self.timeout:.0f} s (at {last})")


class Engine(ABC):
    """A launched browser of one engine: opens a tab per scenario, in a fresh profile state."""

    name: str = ""
    # Features the expectations follow: "fetchlater", "ping" (sends <a ping> by default).
    features: frozenset[str] = frozenset()

    def __init__(self, ready: Ready, *, timeout: float = 30) -> None:
        self.ready = ready
        self.timeout = timeout

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    def version(self) -> str:
        """The browser's name and version, as the report shows it."""

    @abstractmethod
    def open(
        self, scenario: Scenario, url: str, outcome: Outcome
    ) -> contextlib.AbstractAsyncContextManager[Tab]:
        """A tab on `url`, loaded and ready, closed afterwards.

        `scenario.own_browser`: the scenario closes the browser, so it gets one of its own;
        `scenario.hides`: the tab must really become hidden when something comes in front.
        """
