"""Be the reader of the demo on a machine without a screen: open the sample site in headless
Chromium, stay a moment, click a link to another post, then close the tab.

`scripts/demo.sh --click` runs this once the servers are up, so the records it prints come from
a real browser leaving a real page. Any failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import sys
import time
import urllib.request

from sitebeacon.errors import SitebeaconError
from sitebeacon.proof.engines.chromium import LAUNCH_ARGS, find_browser

SETUP_HINT = "run bash scripts/setup.sh --demo --chromium"


def wait_until_up(url: str) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SitebeaconError(f"{url} did not answer within 30 s")


def click_through(base_url: str) -> None:
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise SitebeaconError(f"playwright is not installed ({SETUP_HINT})") from error
    executable = find_browser()
    wait_until_up(base_url + "/")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable, args=list(LAUNCH_ARGS), headless=True
            )
            page = browser.new_page()
            page.goto(base_url + "/")
            time.sleep(1.5)
            link = page.locator("a[href^='/posts/']").first
            print(f"demo: clicking {link.get_attribute('href')}", file=sys.stderr)
            link.click()
            page.wait_for_load_state()
            time.sleep(1.0)
            page.close(run_before_unload=False)
            browser.close()
    except PlaywrightError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SitebeaconError(f"Chromium ({executable}) failed: {first}") from error


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: demo_click.py BASE_URL", file=sys.stderr)
        return 2
    try:
        click_through(argv[0].rstrip("/"))
    except SitebeaconError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
