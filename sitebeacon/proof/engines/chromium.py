"""Chromium: Playwright for most scenarios, raw CDP for the hidden tab.

Three things about headless Chromium under Playwright shape this driver (all checked by
tests/proof/test_e2e.py):

- Playwright launches Chromium with `--disable-back-forward-cache`; scenario 7 needs the cache,
  so that switch is dropped (`IGNORED_DEFAULT_ARGS`).
- Playwright turns on CDP focus emulation for every page it attaches to, which holds the page
  "visible" whatever tab is in front, so no Playwright-driven page ever fires visibilitychange
  to hidden. A scenario that hides the tab therefore runs in a Chromium that Playwright does
  not attach to, driven over raw CDP (`RawChromium`): a second tab opened in front of the page
  with `Target.createTarget(newWindow=false)` makes it really hidden.
- `Page.crash` never answers, so the driver does not wait for its reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sitebeacon.errors import SitebeaconError
from sitebeacon.proof.engines import FEATURES
from sitebeacon.proof.engines.base import (
    DriverError,
    Engine,
    Outcome,
    Ready,
    Tab,
    link_selector,
)
from sitebeacon.proof.engines.processes import executable_version
from sitebeacon.proof.engines.remote import RemoteBrowser

if TYPE_CHECKING:
    from sitebeacon.proof.scenarios import Scenario

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = "install one (Debian/Ubuntu: apt-get install chromium) or pass --browser PATH"

# Names other than loopback resolve to nothing: an outbound click starts a real navigation that
# ends on an error page, and no request ever leaves the machine.
HOST_RULES = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"
LAUNCH_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    HOST_RULES,
)
IGNORED_DEFAULT_ARGS = ("--disable-back-forward-cache",)

# Chrome DevTools' "Slow 3G" preset (renamed "3G" in 2024), as defined in
# ChromeDevTools/devtools-frontend front_end/core/sdk/NetworkManager.ts, Slow3GConditions:
#   download: 500 * 1000 / 8 * .8, upload: 500 * 1000 / 8 * .8, latency: 400 * 5
# i.e. 400 kbit/s each way (50,000 bytes/s) and 2,000 ms of added latency per request.
SLOW_3G: dict[str, Any] = {
    "offline": False,
    "latency": 400 * 5,
    "downloadThroughput": 500 * 1000 / 8 * 0.8,
    "uploadThroughput": 500 * 1000 / 8 * 0.8,
}
THROTTLES: dict[str, dict[str, Any]] = {"slow3g": SLOW_3G}


def find_browser(path: str | None = None) -> str:
    """The Chromium to drive: `path` when given, else the first of BROWSER_NAMES on PATH."""
    if path is not None:
        candidate = Path(path)
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        found = shutil.which(path)
        if found is not None:
            return found
        raise SitebeaconError(f"--browser {path}: no such executable file")
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found is not None:
            return found
    raise SitebeaconError(
        f"no Chromium found on PATH (looked for {', '.join(BROWSER_NAMES)}); {INSTALL_HINT}"
    )


def throttle_conditions(name: str | None) -> dict[str, Any] | None:
    """CDP `Network.emulateNetworkConditions` parameters for a --throttle name."""
    if name is None:
        return None
    if name not in THROTTLES:
        raise SitebeaconError(f"unknown throttle {name!r}; known: {', '.join(THROTTLES)}")
    return THROTTLES[name]


def _async_playwright() -> Any:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        raise SitebeaconError(
            "driving Chromium needs Playwright for Python: pip install 'sitebeacon[verify]'"
        ) from None
    return async_playwright


# --- raw CDP, for the one thing Playwright cannot do (see the module docstring) ---------------


class CdpError(Exception):
    """An error answer from Chromium over CDP."""


class RawChromium(RemoteBrowser):
    """A Chromium process of our own, driven over its DevTools WebSocket."""

    name = "chromium"
    protocol = "remote debugging"
    closed = CdpError

    async def launch(self) -> None:
        await self.spawn(
            "--headless",
            *LAUNCH_ARGS,
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "about:blank",
        )

    async def address(self) -> str:
        # Chromium writes the port it picked, then the browser endpoint's path, to this file.
        active = self.profile / "DevToolsActivePort"
        while True:
            lines = active.read_text().split() if active.is_file() else []
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            if self.process is None or self.process.returncode is not None:
                raise SitebeaconError(f"{self.executable} did not start ({self.protocol})")
            await asyncio.sleep(0.05)

    async def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 60,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        answer = await self.send(message, timeout)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error'].get('message', answer['error'])}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def listen(self, listener: Callable[[dict[str, Any]], None]) -> None:
        self.listeners.append(listener)

    async def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self.call("Browser.close", timeout=5)
        await super().close()


# --- tabs ----------------------------------------------------------------------------------


class PlaywrightTab(Tab):
    """A page in a fresh Playwright context."""

    def __init__(self, page: Any, url: str, timeout: float) -> None:
        super().__init__(url, timeout)
        self.page = page

    async def evaluate(self, expression: str) -> Any:
        return await self.page.evaluate(expression)

    async def click(self, href: str) -> None:
        """A real mouse click on the link; a script click if it cannot be clicked (hidden)."""
        link = self.page.locator(link_selector(href)).first
        try:
            await link.click(timeout=5000, no_wait_after=True)
        except Exception:
            await link.evaluate("a => a.click()")

    async def wait_url(self, accept: Callable[[str], bool], *, loaded: bool = True) -> str:
        # Playwright knows the committed URL (an error page's too): no evaluating while the
        # old document goes away.
        if loaded:
            await self.page.wait_for_url(accept, wait_until="commit", timeout=self.timeout * 1000)
            await self.page.wait_for_load_state("load", timeout=self.timeout * 1000)
            return str(self.page.url)
        deadline = time.monotonic() + self.timeout
        while not accept(self.page.url):
            if time.monotonic() > deadline:
                raise DriverError(f"the page did not get there in {self.timeout:.0f} s")
            await asyncio.sleep(0.02)
        return str(self.page.url)

    async def reload(self) -> None:
        await self.page.reload(wait_until="load", timeout=self.timeout * 1000)

    async def back(self) -> None:
        # "commit": a page restored from the cache fires no load event.
        await self.page.go_back(wait_until="commit", timeout=self.timeout * 1000)

    async def hide(self) -> str:
        raise DriverError("a Playwright-driven page never becomes hidden (focus emulation)")

    async def close(self) -> None:
        await self.page.close(run_before_unload=False)

    async def crash(self) -> bool:
        session = await self.page.context.new_cdp_session(self.page)
        crashed = asyncio.get_running_loop().create_future()

        def on_crash(_: Any) -> None:
            if not crashed.done():
                crashed.set_result(None)

        self.page.once("crash", on_crash)
        # Page.crash never answers: fire it and wait for Playwright's crash event instead.
        request = asyncio.ensure_future(session.send("Page.crash"))
        try:
            await asyncio.wait_for(crashed, self.timeout)
            return True
        except TimeoutError:
            return False
        finally:
            request.cancel()
            with contextlib.suppress(BaseException):
                await request

    async def close_browser(self) -> None:
        # The scenario has a browser of its own; close it with the page still open.
        await self.page.context.browser.close()


class CdpTab(Tab):
    """A page in the raw-CDP Chromium: the one kind of Chromium page that can become hidden."""

    def __init__(self, raw: RawChromium, context: str, target: str, session: str, url: str,
                 timeout: float) -> None:  # fmt: skip
        super().__init__(url, timeout)
        self.raw, self.context, self.target, self.session = raw, context, target, session

    async def evaluate(self, expression: str) -> Any:
        answer = await self.raw.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, self.session
        )
        return answer.get("result", {}).get("value")

    async def click(self, href: str) -> None:
        await self.evaluate(f"document.querySelector({json.dumps(link_selector(href))}).click()")

    async def reload(self) -> None:
        raise DriverError("not needed over raw CDP")

    async def back(self) -> None:
        raise DriverError("not needed over raw CDP")

    async def hide(self) -> str:
        # A second tab of the same window comes to the front: the page becomes hidden.
        await self.raw.call(
            "Target.createTarget",
            {"url": "about:blank", "browserContextId": self.context, "newWindow": False},
        )
        return str(await self.evaluate("document.visibilityState"))

    async def close(self) -> None:
        await self.raw.call("Target.closeTarget", {"targetId": self.target})

    async def crash(self) -> bool:
        raise DriverError("not needed over raw CDP")

    async def close_browser(self) -> None:
        raise DriverError("not needed over raw CDP")


class ChromiumEngine(Engine):
    """Debian's Chromium, headless: one shared Playwright browser, a fresh context a scenario."""

    name = "chromium"
    features = FEATURES["chromium"]

    def __init__(
        self,
        ready: Ready,
        *,
        executable: str | None = None,
        throttle: str | None = None,
        timeout: float = 30,
    ) -> None:
        self.conditions = throttle_conditions(throttle)
        super().__init__(ready, timeout=timeout * (3 if self.conditions else 1))
        self.executable = find_browser(executable)
        self._manager: Any = None
        self._playwright: Any = None
        self._browser: Any = None
        self._raw: RawChromium | None = None

    def version(self) -> str:
        return executable_version(self.executable)

    async def start(self) -> None:
        self._manager = _async_playwright()()
        self._playwright = await self._manager.__aenter__()
        try:
            self._browser = await self._launch()
        except BaseException:
            await self._manager.__aexit__(None, None, None)
            raise

    async def stop(self) -> None:
        try:
            if self._raw is not None:
                await self._raw.close()
            if self._browser is not None:
                with contextlib.suppress(Exception):
                    await self._browser.close()
        finally:
            await self._manager.__aexit__(None, None, None)

    async def _launch(self) -> Any:
        try:
            return await self._playwright.chromium.launch(
                executable_path=self.executable,
                args=list(LAUNCH_ARGS),
                ignore_default_args=list(IGNORED_DEFAULT_ARGS),
                headless=True,
            )
        except Exception as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise SitebeaconError(f"cannot launch {self.executable}: {first}") from None

    @contextlib.asynccontextmanager
    async def open(self, scenario: Scenario, url: str, outcome: Outcome) -> AsyncIterator[Tab]:
        if scenario.hides:
            async with self._cdp_tab(url, outcome) as tab:
                yield tab
            return
        browser = await self._launch() if scenario.own_browser else self._browser
        context = await browser.new_context()
        try:
            page = await context.new_page()
            self._watch(page, outcome)
            if self.conditions is not None:
                session = await context.new_cdp_session(page)
                await session.send("Network.emulateNetworkConditions", self.conditions)
            await page.goto(url, wait_until="load", timeout=self.timeout * 1000)
            await self.ready(url, 1)
            yield PlaywrightTab(page, url, self.timeout)
        finally:
            with contextlib.suppress(Exception):
                await context.close()
            if scenario.own_browser:
                with contextlib.suppress(Exception):
                    await browser.close()

    def _watch(self, page: Any, outcome: Outcome) -> None:
        page.on("pageerror", lambda error: outcome.page_errors.append(str(error)))

        def on_console(message: Any) -> None:
            if message.type == "error":
                outcome.console_errors.append(message.text)

        page.on("console", on_console)

    @contextlib.asynccontextmanager
    async def _cdp_tab(self, url: str, outcome: Outcome) -> AsyncIterator[Tab]:
        if self._raw is None:
            self._raw = RawChromium(self.executable)
            await self._raw.start()
        raw = self._raw
        context = (await raw.call("Target.createBrowserContext"))["browserContextId"]
        target = (
            await raw.call(
                "Target.createTarget", {"url": "about:blank", "browserContextId": context}
            )
        )["targetId"]
        attached = await raw.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        session = attached["sessionId"]
        loaded = asyncio.Event()

        def on_event(message: dict[str, Any]) -> None:
            if message.get("sessionId") != session:
                return
            method, params = message["method"], message.get("params", {})
            if method == "Page.loadEventFired":
                loaded.set()
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                text = details.get("exception", {}).get("description") or details.get("text")
                outcome.page_errors.append(str(text))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                outcome.console_errors.append(
                    " ".join(
                        str(arg.get("value", arg.get("description", "")))
                        for arg in params.get("args", [])
                    )
                )

        raw.listen(on_event)
        try:
            for method in ("Page.enable", "Runtime.enable", "Network.enable"):
                await raw.call(method, session=session)
            if self.conditions is not None:
                await raw.call("Network.emulateNetworkConditions", self.conditions, session)
            await raw.call("Page.navigate", {"url": url}, session)
            await asyncio.wait_for(loaded.wait(), self.timeout)
            await self.ready(url, 1)
            yield CdpTab(raw, context, target, session, url, self.timeout)
        finally:
            with contextlib.suppress(Exception):
                await raw.call("Target.disposeBrowserContext", {"browserContextId": context})
