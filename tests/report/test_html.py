"""The HTML report in real Chromium from file://: no request but the file, no console error,
a screenshot that is not blank, readable with JavaScript off; and the same bytes every time."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sitebeacon.collect.stores import open_store
from sitebeacon.collect.types import Row
from sitebeacon.report.aggregate import Options, Period, build_report
from sitebeacon.report.html import render_html

PAGES = [f"https://blog.example/posts/{n}/" for n in range(12)]
AGENTS = [("Firefox 128", "Linux", "desktop"), ("Mobile Safari 17", "iOS", "mobile"), (None,) * 3]


def filled_store(url: str) -> None:
    rng = random.Random(7)
    rows = []
    first = date(2024, 5, 1)
    for index in range(900):
        day = first + timedelta(days=rng.randrange(28))
        stamp = f"{day.isoformat()}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00.000Z"
        page = PAGES[min(int(rng.expovariate(0.4)), len(PAGES) - 1)]
        browser, os, device = rng.choice(AGENTS)
        kind = rng.choice(["pageview", "pageview", "leave", "outbound", "download", "signup"])
        data = None
        if kind == "leave":
            data = f'{{"visible_ms":{int(rng.lognormvariate(9.5, 1.2))}}}'
        elif kind == "signup":
            data = '{"plan":"pro"}'
        rows.append(
            Row(
                f"id{index}",
                stamp,
                kind,
                page + ("?utm_source=nl" if index % 17 == 0 else ""),
                rng.choice([None, "https://www.google.com/", "https://news.ycombinator.com/"]),
                "https://github.com/x" if kind in ("outbound", "download") else None,
                rng.choice(["fetchlater", "beacon", "keepalive"]),
                "text/plain",
                "no-cors",
                0,
                None,
                data,
                index % 31 == 0,
                f"v{rng.randrange(200)}",
                browser,
                os,
                device,
            )
        )
    with open_store(url) as store:
        store.add(rows)


def report_file(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    filled_store(url)
    with open_store(url) as store:
        report = build_report(store, Period(date(2024, 5, 1), date(2024, 5, 30)), Options())
    html = render_html(report)
    assert render_html(report) == html  # deterministic
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    return path, report


def test_report_in_chromium_from_file(chromium: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    path, report = report_file(tmp_path)
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            page.click("#pages th:nth-child(2)")  # sorting runs without an error
            shot = page.screenshot(full_page=True)
            blank = browser.new_page(viewport={"width": 1100, "height": 900})
            blank.set_content("<html><body></body></html>")
            empty = blank.screenshot(full_page=True)
            charts = page.locator("svg[role=img]").count()
            titled = page.locator("svg[role=img] title").count()
            no_js = browser.new_context(java_script_enabled=False).new_page()
            no_js.goto(path.as_uri())
            rows_without_js = no_js.locator("#pages tbody tr").count()
            bars_without_js = no_js.locator("#daily rect.bar").count()
        finally:
            browser.close()
    assert requests == [path.as_uri()]
    assert problems == []
    assert len(shot) > 10 * len(empty)  # a blank page compresses to almost nothing
    (tmp_path / "report.png").write_bytes(shot)
    assert charts >= 4 and titled >= charts
    assert rows_without_js == len(report["pages"]) > 12  # 12 pages, some with a utm query
    assert bars_without_js == 30
