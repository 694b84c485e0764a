"""WebKitGTK through WebKitWebDriver (W3C WebDriver over HTTP) driving MiniBrowser under Xvfb.

Debian's `webkit2gtk-driver` provides WebKitWebDriver; it starts MiniBrowser (from
libwebkit2gtk-4.1) with `--automation` through the `webkitgtk:browserOptions` capability.
Headless MiniBrowser timed out here, so it runs on an Xvfb display of its own (`xvfb`).
WebDriver's calls are short and blocking: plain `http.client`, run in a worker thread.

Measured with WebKitGTK 2.50 (see README "Proof in a real browser"): minimising the window
hides the page (visibilityState hidden; no window manager needed); the back-forward cache
works; ending the session closes each window like a tab close (pagehide runs); killing the
WebKitWebProcess is a crash in which no page event runs. WebKit has no fetchLater.

Every scenario gets a session, so a MiniBrowser, of its own (about half a second): a fresh
state each time, and closing the browser is just ending that session. WebDriver classic has
no log events, so page errors are collected by a listener added after the page loaded: an
error thrown while the module first runs is not seen in this engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sitebeacon.errors import SitebeaconError
from sitebeacon.proof.engines import FEATURES
from sitebeacon.proof.engines.base import DriverError, Engine, Outcome, Ready, Tab, link_selector
from sitebeacon.proof.engines.processes import (
    end_group,
    find_executable,
    free_port,
    group_processes,
    kill_processes,
    start_group,
)

if TYPE_CHECKING:
    from sitebeacon.proof.scenarios import Scenario

DRIVER_NAMES = ("WebKitWebDriver",)
MINIBROWSER_PATHS = (
    "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
    "/usr/lib/aarch64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
    "/usr/libexec/webkit2gtk-4.1/MiniBrowser",
)
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C web element identifier key
ERRORS = "__sitebeaconVerifyErrors"
WATCH_ERRORS = (
    f"(() => {{ window.{ERRORS} = []; addEventListener('error', e => window.{ERRORS}.push("
    f"String(e.error || e.message))); addEventListener('unhandledrejection', e =>"
    f" window.{ERRORS}.push(String(e.reason))) }})()"
)


def find_webkit() -> tuple[str, str, str]:
    """(WebKitWebDriver, MiniBrowser, Xvfb), or a SitebeaconError naming the package."""
    driver = find_executable(DRIVER_NAMES, "webkit2gtk-driver", "WebKitWebDriver")
    mini = find_executable(MINIBROWSER_PATHS, "libwebkit2gtk-4.1-0", "MiniBrowser")
    xvfb = find_executable(("Xvfb",), "xvfb", "Xvfb")
    return driver, mini, xvfb


def _package_version() -> str:
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "libwebkit2gtk-4.1-0"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip()


class WebDriver:
    """One WebKitWebDriver process on a port of its own."""

    def __init__(self, executable: str, display: str) -> None:
        self.executable, self.display = executable, display
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 60) -> None:
        env = dict(os.environ, DISPLAY=self.display)
        env.pop("WAYLAND_DISPLAY", None)
        env.setdefault("WEBKIT_DISABLE_COMPOSITING_MODE", "1")  # no GPU under Xvfb
        env.setdefault("LIBGL_ALWAYS_SOFTWARE", "1")
        # MiniBrowser and its WebKit processes join this process group.
        self.process = await start_group(self.executable, f"--port={self.port}", env=env)
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.request("GET", "/status", timeout=5)
                return
            except (OSError, DriverError):
                if time.monotonic() > deadline or self.process.returncode is not None:
                    raise SitebeaconError(f"{self.executable} did not start") from None
                await asyncio.sleep(0.1)

    async def request(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        return await asyncio.to_thread(self._request, method, path, body, timeout)

    def _request(self, method: str, path: str, body: Any, timeout: float) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body if body is not None else {}).encode()
            headers = {"Content-Type": "application/json; charset=utf-8"}
            connection.request(method, path, body=data if method == "POST" else None,
                               headers=headers)  # fmt: skip
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        value = (json.loads(raw) if raw else {}).get("value")
        if response.status >= 400:
            error = value if isinstance(value, dict) else {}
            raise DriverError(f"{method} {path}: {error.get('error')}: {error.get('message')}")
        return value

    def web_processes(self) -> list[int]:
        if self.process is None:
            return []
        return [
            pid
            for pid, argv in group_processes(self.process.pid)
            if argv and argv[0].endswith("WebKitWebProcess")  # zombies have no argv
        ]

    async def close(self) -> None:
        await end_group(self.process)


class Xvfb:
    """An X server of our own; `-displayfd` makes it pick a free display number."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15) -> str:
        read_end, write_end = os.pipe()
        try:
            self.process = subprocess.Popen(
                [
                    self.executable,
                    "-displayfd",
                    str(write_end),
                    "-screen",
                    "0",
                    "1280x1024x24",
                    "-nolisten",
                    "tcp",
                    "-noreset",
                ],
                pass_fds=(write_end,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            os.close(write_end)
            write_end = -1
            os.set_blocking(read_end, False)
            text = b""
            deadline = time.monotonic() + timeout
            while not text.endswith(b"\n"):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise SitebeaconError("Xvfb did not start")
                try:
                    text += os.read(read_end, 64)
                except BlockingIOError:
                    time.sleep(0.02)
            return ":" + text.decode().strip()
        finally:
            if write_end >= 0:
                os.close(write_end)
            os.close(read_end)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class WebKitTab(Tab):
    """The one window of a MiniBrowser session."""

    hidden_by = "minimising its window"

    def __init__(self, driver: WebDriver, session: str, url: str, timeout: float) -> None:
        super().__init__(url, timeout)
        self.driver, self.session = driver, session
        self.ended = False

    async def command(self, method: str, path: str, body: Any = None) -> Any:
        return await self.driver.request(
            method, f"/session/{self.session}{path}", body, self.timeout + 5
        )

    async def evaluate(self, expression: str) -> Any:
        return await self.command(
            "POST", "/execute/sync", {"script": f"return ({expression});", "args": []}
        )

    async def click(self, href: str) -> None:
        element = await self.command(
            "POST", "/element", {"using": "css selector", "value": link_selector(href)}
        )
        # Element Click synthesises a platform mouse event: trusted, with user activation.
        await self.command("POST", f"/element/{element[ELEMENT]}/click", {})

    async def reload(self) -> None:
        await self.command("POST", "/refresh", {})

    async def back(self) -> None:
        await self.command("POST", "/back", {})

    async def hide(self) -> str:
        # Under plain Xvfb (no window manager) minimising unmaps the window: hidden.
        await self.command("POST", "/window/minimize", {})
        return str(await self.evaluate("document.visibilityState"))

    async def close(self) -> None:
        await self.command("DELETE", "/window")

    async def crash(self) -> bool:
        return await kill_processes(self.driver.web_processes())

    async def close_browser(self) -> None:
        await self.end()

    async def end(self) -> None:
        """End the session: MiniBrowser closes its windows (pagehide runs) and exits."""
        if not self.ended:
            self.ended = True
            with contextlib.suppress(Exception):
                await self.driver.request("DELETE", f"/session/{self.session}", timeout=20)

    async def errors(self) -> list[str]:
        with contextlib.suppress(Exception):
            found = await self.evaluate(f"window.{ERRORS} || []")
            return [str(item) for item in found or []]
        return []


class WebKitEngine(Engine):
    """MiniBrowser on Xvfb: one WebKitWebDriver, a session (a MiniBrowser) per scenario."""

    name = "webkit"
    features = FEATURES["webkit"]

    def __init__(self, ready: Ready, *, timeout: float = 30) -> None:
        super().__init__(ready, timeout=timeout)
        self.driver_path, self.minibrowser, xvfb = find_webkit()
        self._xvfb = Xvfb(xvfb)
        self._driver: WebDriver | None = None

    def version(self) -> str:
        version = _package_version()
        return f"{self.minibrowser} (WebKitGTK {version})" if version else self.minibrowser

    async def start(self) -> None:
        display = await asyncio.to_thread(self._xvfb.start)
        self._driver = WebDriver(self.driver_path, display)
        try:
            await self._driver.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._driver is not None:
            await self._driver.close()
        self._xvfb.stop()

    @contextlib.asynccontextmanager
    async def open(self, scenario: Scenario, url: str, outcome: Outcome) -> AsyncIterator[Tab]:
        assert self._driver is not None
        options = {"binary": self.minibrowser, "args": ["--automation"]}
        capabilities = {"pageLoadStrategy": "normal", "webkitgtk:browserOptions": options}
        session = await self._driver.request(
            "POST", "/session", {"capabilities": {"alwaysMatch": capabilities}}
        )
        tab = WebKitTab(self._driver, session["sessionId"], url, self.timeout)
        try:
            # A spare tab behind the page (MiniBrowser opens new tabs in the background): closing
            # the page is then closing a tab, not quitting MiniBrowser with its last one, which
            # under load once took the page's requests down with it.
            await tab.command("POST", "/window/new", {"type": "tab"})
            await tab.command("POST", "/url", {"url": url})
            await tab.evaluate(WATCH_ERRORS)
            await self.ready(url, 1)
            yield tab
        finally:
            outcome.page_errors += await tab.errors()
            await tab.end()
