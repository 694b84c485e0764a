"""Be the reader of the demo on a machine without a screen: open the sample site in headless
Chromium, stay a moment, click a link to another post, then close the tab.

`scripts/demo.sh --click` runs this once the receiver is up, so the records it prints come from
a real browser leaving a real page.
"""

from __future__ import annotations

import sys
import time
import urllib.request

from playwright.sync_api import sync_playwright

from sitebeacon.proof.engines.chromium import LAUNCH_ARGS, find_browser


def wait_until_up(url: str) -> None:
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"demo: {url} did not answer")


def main(base_url: str) -> int:
    wait_until_up(base_url + "/")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=find_browser(), args=list(LAUNCH_ARGS), headless=True
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
