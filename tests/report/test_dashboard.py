"""The live dashboard on a real receiver: 404 without the token (logged), 200 with it, and a
record sent to /collect shows up in the open page in Chromium without reloading it."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sitebeacon.collect.server import running_receiver
from sitebeacon.report.dashboard import Dashboard

TOKEN = "s3cret-token"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def send(client: httpx.Client, record_id: str, url: str) -> None:
    answer = client.post(
        "/collect",
        content=f'{{"v":1,"id":"{record_id}","type":"pageview","url":"{url}"}}',
        headers={"Content-Type": "text/plain", "User-Agent": UA},
    )
    assert answer.status_code == 204


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    mounts = {"mounts_for": lambda store: {"/dashboard": Dashboard(store, TOKEN)}}
    with running_receiver(db_url, **mounts) as base, httpx.Client(base_url=base) as client:
        yield client, base


def test_token_required(dashboard: tuple[httpx.Client, str], caplog: Any) -> None:
    client, _ = dashboard
    with caplog.at_level(logging.WARNING, logger="sitebeacon.dashboard"):
        assert client.get("/dashboard").status_code == 404
        assert client.get("/dashboard", params={"token": "wrong"}).status_code == 404
        assert client.get("/dashboard/x", params={"token": TOKEN[:-1]}).status_code == 404
    assert [r.getMessage().split(" token")[0] for r in caplog.records] == [
        "dashboard: missing",
        "dashboard: wrong",
        "dashboard: wrong",
    ]
    page = client.get("/dashboard", params={"token": TOKEN})
    assert page.status_code == 200 and "Last 5 minutes" in page.text
    bearer = client.get("/dashboard", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200


def test_without_the_flag_there_is_no_dashboard(tmp_path: Path) -> None:
    with running_receiver(f"sqlite:///{tmp_path / 'r.db'}") as base:
        assert httpx.get(f"{base}/dashboard", params={"token": TOKEN}).status_code == 404


def test_a_record_shows_up_live(dashboard: tuple[httpx.Client, str]) -> None:
    client, _ = dashboard
    send(client, "live1", "https://site.example/just-now")
    deadline = time.monotonic() + 30
    while True:  # the dashboard caches for a few seconds: poll
        data = client.get("/dashboard", params={"token": TOKEN, "format": "json"}).json()
        pages = [page["url"] for page in data["recent"]["pages"]]
        if "https://site.example/just-now" in pages:
            break
        assert time.monotonic() < deadline, data["recent"]
        time.sleep(0.5)
    assert data["pageviews"] >= 1 and data["visitors"] == 1


def test_live_view_in_chromium(chromium: str, dashboard: tuple[httpx.Client, str]) -> None:
    from playwright.sync_api import sync_playwright

    client, base = dashboard
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page()
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{base}/dashboard?token={TOKEN}")
            assert "https://site.example/seen-live" not in page.content()
            send(client, "live2", "https://site.example/seen-live")
            # The open page refreshes its panels itself (no reload, no navigation).
            page.wait_for_selector("#recent >> text=https://site.example/seen-live", timeout=30_000)
            assert page.url == f"{base}/dashboard?token={TOKEN}"
        finally:
            browser.close()
    assert problems == []
