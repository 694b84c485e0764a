"""Browser engines `verify` can drive, behind one interface (`base.Engine`, `base.Tab`).

Only Debian's packages are needed: chromium (through Playwright), firefox-esr (WebDriver BiDi,
served by Firefox itself) and webkit2gtk-driver (WebKitWebDriver driving MiniBrowser, under
Xvfb). Engines are imported when asked for, so one missing engine never stops another.
"""

from __future__ import annotations

from sitebeacon.errors import SitebeaconError
from sitebeacon.proof.engines.base import Engine, Ready

ENGINES = ("chromium", "firefox", "webkit")
LABELS = {"chromium": "Chromium", "firefox": "Firefox", "webkit": "WebKit"}
# What each engine offers that changes what a scenario must deliver: the transports it has
# ("fetchlater": a record armed ahead of time also survives a crash) and "ping" (<a ping> is
# sent without any setting). Measured with the Debian packages (README "Proof in a real
# browser"): neither Firefox ESR 153 nor WebKitGTK 2.50 has fetchLater; Firefox sends no ping
# unless browser.send_pings is set.
FEATURES: dict[str, frozenset[str]] = {
    "chromium": frozenset({"fetchlater", "beacon", "keepalive", "ping"}),
    "firefox": frozenset({"beacon", "keepalive"}),
    "webkit": frozenset({"beacon", "keepalive", "ping"}),
}


def make_engine(
    name: str,
    ready: Ready,
    *,
    browser: str | None = None,
    throttle: str | None = None,
    timeout: float = 30,
) -> Engine:
    """The engine called `name` (not started yet). `browser`: Chromium's executable;
    `throttle`: network emulation, which only Chromium offers (over CDP)."""
    if name == "chromium":
        from sitebeacon.proof.engines.chromium import ChromiumEngine

        return ChromiumEngine(ready, executable=browser, throttle=throttle, timeout=timeout)
    if name not in ENGINES:
        raise SitebeaconError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    if throttle is not None:
        raise SitebeaconError(
            f"--throttle works in chromium only (CDP network emulation); not in {name}"
        )
    if name == "firefox":
        from sitebeacon.proof.engines.firefox import FirefoxEngine

        return FirefoxEngine(ready, timeout=timeout)
    from sitebeacon.proof.engines.webkit import WebKitEngine

    return WebKitEngine(ready, timeout=timeout)


def locate(name: str, browser: str | None = None, throttle: str | None = None) -> None:
    """Raise SitebeaconError, naming the package to install, when `name` cannot run here."""
    if name not in ENGINES:
        raise SitebeaconError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    if name == "chromium":
        from sitebeacon.proof.engines.chromium import find_browser, throttle_conditions

        find_browser(browser)
        throttle_conditions(throttle)
        return
    if throttle is not None:
        raise SitebeaconError(
            f"--throttle works in chromium only (CDP network emulation); not in {name}"
        )
    if name == "firefox":
        from sitebeacon.proof.engines.firefox import find_firefox

        find_firefox()
        return
    from sitebeacon.proof.engines.webkit import find_webkit

    find_webkit()
