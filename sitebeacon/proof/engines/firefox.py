"""Firefox ESR through WebDriver BiDi, which Firefox serves itself (no geckodriver).

`firefox-esr --headless --remote-debugging-port 0 --profile DIR --no-remote` prints
`WebDriver BiDi listening on ws://...`; the driver opens `<that>/session`, sends
`session.new`, and from then on speaks `browsingContext.*`, `script.evaluate` and
`input.performActions`. Measured with Firefox ESR 153 (see README "Proof in a real browser"):
headless Firefox really switches tabs, so a tab opened in front hides the page; the back-forward
cache works; BiDi `browser.close` runs pagehide in every tab (no visibilitychange); killing the
web content process is a crash in which no page event runs. Firefox has no fetchLater, and
sends no `<a ping>` by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sitebeacon.errors import SitebeaconError
from sitebeacon.proof.engines import FEATURES
from sitebeacon.proof.engines.base import DriverError, Engine, Outcome, Ready, Tab, link_selector
from sitebeacon.proof.engines.processes import (
    executable_version,
    find_executable,
    group_processes,
    kill_processes,
)
from sitebeacon.proof.engines.remote import RemoteBrowser

if TYPE_CHECKING:
    from sitebeacon.proof.scenarios import Scenario

FIREFOX_NAMES = ("firefox-esr", "firefox")

# Written to the profile's user.js: quiet on a machine without network, nothing in the way of
# closing tabs, and a proxy that refuses everything but loopback, so an outbound click ends
# on an error page and no request leaves the machine (Chromium's --host-resolver-rules).
PREFS: dict[str, bool | int | str] = {
    "app.update.enabled": False,
    "app.update.auto": False,
    "app.normandy.enabled": False,
    "app.shield.optoutstudies.enabled": False,
    "browser.aboutwelcome.enabled": False,
    "browser.discovery.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.shell.checkDefaultBrowser": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.search.update": False,
    "browser.region.update.enabled": False,
    "browser.tabs.warnOnClose": False,
    "browser.warnOnQuit": False,
    "browser.sessionstore.resume_from_crash": False,
    "browser.tabs.crashReporting.sendReport": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.server": "",
    "extensions.update.enabled": False,
    "extensions.blocklist.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.predictor.enabled": False,
    "network.http.speculative-parallel-limit": 0,
    "media.gmp-manager.url": "",
    "identity.fxaccounts.enabled": False,
    "network.proxy.type": 1,
    "network.proxy.http": "127.0.0.1",
    "network.proxy.http_port": 9,
    "network.proxy.ssl": "127.0.0.1",
    "network.proxy.ssl_port": 9,
    "network.proxy.no_proxies_on": "localhost, 127.0.0.1",
    "network.proxy.allow_hijacking_localhost": False,
}
_LISTENING = re.compile(rb"WebDriver BiDi listening on (ws://\S+)")


def find_firefox() -> str:
    return find_executable(FIREFOX_NAMES, "firefox-esr", "Firefox")


class Firefox(RemoteBrowser):
    """One Firefox process and its BiDi session."""

    name = "firefox"
    protocol = "WebDriver BiDi"
    closed = DriverError

    async def launch(self) -> None:
        (self.profile / "user.js").write_text(
            "".join(f'user_pref("{k}", {json.dumps(v)});\n' for k, v in PREFS.items())
        )
        await self.spawn(
            "--headless",
            "--remote-debugging-port",
            "0",
            "--profile",
            str(self.profile),
            "--no-remote",
            stderr=subprocess.PIPE,
            env=dict(os.environ, MOZ_CRASHREPORTER_DISABLE="1"),
        )

    async def address(self) -> str:
        assert self.process is not None and self.process.stderr is not None
        stream = self.process.stderr
        while True:
            line = await stream.readline()
            if not line:
                raise SitebeaconError(f"{self.executable} exited before serving {self.protocol}")
            found = _LISTENING.search(line)
            if found is not None:
                self._tasks.append(asyncio.create_task(_drain(stream)))
                return found.group(1).decode() + "/session"

    async def start(self, timeout: float = 60) -> None:
        await super().start(timeout)
        await self.call("session.new", {"capabilities": {"alwaysMatch": {}}})
        await self.call("session.subscribe", {"events": ["log.entryAdded"]})

    async def call(self, method: str, params: dict[str, Any], timeout: float = 60) -> Any:
        answer = await self.send({"method": method, "params": params}, timeout)
        if answer.get("type") == "error":
            raise DriverError(f"{answer.get('error')}: {answer.get('message')}")
        return answer.get("result", {})

    def content_processes(self) -> list[int]:
        """The web content processes (`firefox-esr -contentproc -isForBrowser ... tab`).

        Those the fork server starts rewrite their command line into one string, so the
        words are looked for in the whole of it."""
        if self.process is None:
            return []
        found = []
        for pid, argv in group_processes(self.process.pid):
            line = " ".join(argv)
            if "-contentproc" in line and "-isForBrowser" in line and line.endswith(" tab"):
                found.append(pid)
        return found

    async def quit(self, timeout: float = 15) -> None:
        """BiDi `browser.close`: Firefox closes every tab (pagehide runs) and exits."""
        with contextlib.suppress(Exception):
            await self.call("browser.close", {}, timeout)
        if self.process is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), timeout)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


def _value(remote: dict[str, Any]) -> Any:
    """A BiDi RemoteValue as plain JSON."""
    kind, value = remote.get("type"), remote.get("value")
    if kind in ("undefined", "null"):
        return None
    if kind == "array":
        return [_value(item) for item in value or []]
    if kind == "object":
        return {str(key): _value(item) for key, item in value or []}
    if kind == "number" and isinstance(value, str):
        return float(value.replace("Infinity", "inf"))
    return value


class FirefoxTab(Tab):
    """A top-level browsing context (a tab) in its own user context (container)."""

    def __init__(self, browser: Firefox, context: str, user: str | None, url: str,
                 timeout: float) -> None:  # fmt: skip
        super().__init__(url, timeout)
        self.browser, self.context, self.user = browser, context, user

    async def evaluate(self, expression: str) -> Any:
        answer = await self.browser.call(
            "script.evaluate",
            {
                "expression": expression,
                "target": {"context": self.context},
                "awaitPromise": True,
                "serializationOptions": {"maxObjectDepth": 5},
            },
            self.timeout,
        )
        if answer.get("type") == "exception":
            raise DriverError(f"script error: {answer['exceptionDetails'].get('text')}")
        return _value(answer["result"])

    async def click(self, href: str) -> None:
        found = await self.browser.call(
            "browsingContext.locateNodes",
            {
                "context": self.context,
                "locator": {"type": "css", "value": link_selector(href)},
                "maxNodeCount": 1,
            },
        )
        if not found["nodes"]:
            raise DriverError(f"no link href={href!r} on the page")
        origin = {"type": "element", "element": {"sharedId": found["nodes"][0]["sharedId"]}}
        pointer = [
            {"type": "pointerMove", "x": 0, "y": 0, "origin": origin},
            {"type": "pointerDown", "button": 0},
            {"type": "pointerUp", "button": 0},
        ]
        await self.browser.call(
            "input.performActions",
            {
                "context": self.context,
                "actions": [
                    {
                        "type": "pointer",
                        "id": "mouse",
                        "parameters": {"pointerType": "mouse"},
                        "actions": pointer,
                    }
                ],
            },
        )

    async def reload(self) -> None:
        await self.browser.call(
            "browsingContext.reload", {"context": self.context, "wait": "complete"}, self.timeout
        )

    async def back(self) -> None:
        try:
            await self.browser.call(
                "browsingContext.traverseHistory",
                {"context": self.context, "delta": -1},
                self.timeout,
            )
        except DriverError:
            # Seen in a tab of a fresh user context: "History entry with delta -1 not found",
            # though history.length says 3. The page's own history.back() is the back button.
            await self.evaluate("void history.back()")

    async def hide(self) -> str:
        # Headless Firefox really switches tabs: a tab opened in front hides this one.
        params: dict[str, Any] = {"type": "tab", "background": False}
        if self.user is not None:
            params["userContext"] = self.user
        await self.browser.call("browsingContext.create", params)
        return str(await self.evaluate("document.visibilityState"))

    async def close(self) -> None:
        # promptUnload false: no beforeunload prompt; pagehide and unload still run.
        await self.browser.call(
            "browsingContext.close", {"context": self.context, "promptUnload": False}
        )

    async def crash(self) -> bool:
        # BiDi cannot crash a tab; killing the web content process is what a crash is.
        return await kill_processes(self.browser.content_processes())

    async def close_browser(self) -> None:
        await self.browser.quit()


class FirefoxEngine(Engine):
    """Firefox ESR, headless: one browser, a tab in a fresh user context per scenario."""

    name = "firefox"
    features = FEATURES["firefox"]

    def __init__(self, ready: Ready, *, timeout: float = 30) -> None:
        super().__init__(ready, timeout=timeout)
        self.executable = find_firefox()
        self._browser: Firefox | None = None

    def version(self) -> str:
        return executable_version(self.executable)

    async def start(self) -> None:
        self._browser = await self._launch()

    async def _launch(self) -> Firefox:
        browser = Firefox(self.executable)
        await browser.start()
        return browser

    async def stop(self) -> None:
        if self._browser is not None:
            await self._browser.quit(5)
            await self._browser.close()

    @contextlib.asynccontextmanager
    async def open(self, scenario: Scenario, url: str, outcome: Outcome) -> AsyncIterator[Tab]:
        assert self._browser is not None
        browser = await self._launch() if scenario.own_browser else self._browser
        user: str | None = None
        context = ""

        def on_log(message: dict[str, Any]) -> None:
            entry = message.get("params", {})
            if message.get("method") != "log.entryAdded":
                return
            if entry.get("source", {}).get("context") != context:
                return
            if entry.get("type") == "javascript":
                outcome.page_errors.append(str(entry.get("text")))
            elif entry.get("level") == "error":
                outcome.console_errors.append(str(entry.get("text")))

        browser.listeners.append(on_log)
        try:
            with contextlib.suppress(DriverError):  # older Firefox: no user contexts
                user = (await browser.call("browser.createUserContext", {}))["userContext"]
            params: dict[str, Any] = {"type": "tab", "background": False}
            if user is not None:
                params["userContext"] = user
            context = (await browser.call("browsingContext.create", params))["context"]
            await browser.call(
                "browsingContext.navigate",
                {"context": context, "url": url, "wait": "complete"},
                self.timeout,
            )
            await self.ready(url, 1)
            yield FirefoxTab(browser, context, user, url, self.timeout)
        finally:
            browser.listeners.remove(on_log)
            if scenario.own_browser:
                await browser.close()
            elif user is not None:
                with contextlib.suppress(Exception):
                    await browser.call("browser.removeUserContext", {"userContext": user})
