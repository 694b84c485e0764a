"""Visitors without cookies and the coarse client class, as the receiver stores them (real
uvicorn, real stores), the salt's life in the store, and the migration of an old database."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from files import post_to_app

from sitebeacon.collect.client_class import ClientClassifier
from sitebeacon.collect.server import running_receiver
from sitebeacon.collect.stores import StoreError, open_store
from sitebeacon.collect.stores.sqlite import SQLiteStore
from sitebeacon.errors import SitebeaconError

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def send(client: httpx.Client, record_id: str, agent: str, **headers: str) -> None:
    body = f'{{"v":1,"id":"{record_id}","type":"pageview","url":"https://site.example/"}}'
    answer = client.post(
        "/collect",
        content=body,
        headers={"Content-Type": "text/plain", "User-Agent": agent, **headers},
    )
    assert answer.status_code == 204, answer.text


def by_id(db_url: str) -> dict[str, dict[str, Any]]:
    with open_store(db_url) as store:
        return {r["id"]: r for r in store.records()}


def today_salt(db_url: str) -> bytes:
    with open_store(db_url) as store:
        return store.daily_salt(time.strftime("%Y-%m-%d", time.gmtime()))


@pytest.fixture
def receiving(store_url: str) -> Iterator[tuple[httpx.Client, str]]:
    trusted = ["127.0.0.0/8"]
    with (
        running_receiver(store_url, trusted_proxies=trusted) as base,
        httpx.Client(base_url=base) as client,
    ):
        yield client, store_url


def test_visitor_is_the_daily_salted_hash_and_nothing_identifying_is_stored(
    receiving: tuple[httpx.Client, str],
) -> None:
    client, db_url = receiving
    send(client, "a", FIREFOX, **{"X-Forwarded-For": "203.0.113.7"})
    send(client, "b", FIREFOX, **{"X-Forwarded-For": "203.0.113.7"})
    send(client, "c", FIREFOX, **{"X-Forwarded-For": "203.0.113.8"})
    send(client, "d", IPHONE, **{"X-Forwarded-For": "203.0.113.7"})
    # A spoofed hop before the proxy's own: the right-most untrusted address counts.
    send(client, "e", FIREFOX, **{"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
    rows = by_id(db_url)
    host = client.base_url.host + f":{client.base_url.port}"
    want = hashlib.sha256(
        today_salt(db_url) + b"\0" + host.encode() + b"\0" + b"203.0.113.7\0" + FIREFOX.encode()
    ).hexdigest()[:16]
    assert rows["a"]["visitor"] == rows["b"]["visitor"] == rows["e"]["visitor"] == want
    assert rows["c"]["visitor"] != want and rows["d"]["visitor"] != want
    assert (rows["a"]["browser"], rows["a"]["os"], rows["a"]["device"]) == (
        "Firefox 128",
        "Linux",
        "desktop",
    )
    assert rows["d"]["device"] == "mobile" and rows["d"]["os"] == "iOS"
    if db_url.startswith("sqlite"):  # the bytes on disk hold neither address nor agent
        path = Path(db_url.removeprefix("sqlite:///"))
        with open_store(db_url):
            pass  # closing checkpoints the WAL into the file
        raw = path.read_bytes()
        assert b"203.0.113" not in raw and b"Gecko/20100101" not in raw


def test_forwarded_for_ignored_without_a_trusted_proxy(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    with running_receiver(db_url) as base, httpx.Client(base_url=base) as client:
        send(client, "a", FIREFOX, **{"X-Forwarded-For": "203.0.113.7"})
        send(client, "b", FIREFOX, **{"X-Forwarded-For": "203.0.113.99"})
    rows = by_id(db_url)
    assert rows["a"]["visitor"] == rows["b"]["visitor"]  # both are 127.0.0.1


def test_no_visitors_stores_none(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'r.db'}"
    with running_receiver(db_url, visitors=False) as base, httpx.Client(base_url=base) as c:
        send(c, "a", FIREFOX)
    with open_store(db_url) as store:
        assert store.records()[0]["visitor"] is None
        assert store.query("SELECT count(*) FROM salts") == [(0,)]


def test_bad_trusted_proxy_is_one_line() -> None:
    from sitebeacon.collect.visitors import parse_networks

    with pytest.raises(SitebeaconError, match="not-a-net"):
        parse_networks(["10.0.0.0/8", "not-a-net"])


def test_salt_kept_for_today_and_yesterday_only_and_shared(store_url: str) -> None:
    with open_store(store_url) as first, open_store(store_url) as second:
        day1 = first.daily_salt("2024-05-01")
        assert second.daily_salt("2024-05-01") == day1  # another receiver gets the same
        day2 = second.daily_salt("2024-05-02")
        assert day2 != day1 and len(day2) == 32
        assert first.daily_salt("2024-05-03") != day2
        days = [row[0] for row in first.query("SELECT day FROM salts ORDER BY day")]
        assert days == ["2024-05-02", "2024-05-03"]  # 05-01's is gone: its ids can't be redone


@pytest.mark.parametrize(
    ("agent", "device"),
    [(FIREFOX, "desktop"), (IPHONE, "mobile"), (IPAD, "tablet"), (ANDROID_TABLET, "tablet")],
)
def test_device_classes(agent: str, device: str) -> None:
    assert ClientClassifier()(agent, False).device == device


def test_old_database_gets_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE records (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, received_at TEXT"
        " NOT NULL, type TEXT NOT NULL, url TEXT NOT NULL, referrer TEXT, target TEXT, transport"
        " TEXT, content_type TEXT, fetch_mode TEXT, seq INTEGER NOT NULL DEFAULT 0, ts INTEGER,"
        " data TEXT, bot INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute(
        "INSERT INTO records (id, received_at, type, url) VALUES"
        " ('old', '2024-01-01T00:00:00.000Z', 'pageview', 'https://a/')"
    )
    db.commit()
    db.close()
    url = f"sqlite:///{path}"
    with running_receiver(url) as base, httpx.Client(base_url=base) as client:
        send(client, "new", FIREFOX)
    rows = by_id(url)
    assert rows["old"]["visitor"] is None and rows["old"]["browser"] is None
    assert rows["new"]["visitor"] is not None and rows["new"]["browser"] == "Firefox 128"


class NoSaltStore(SQLiteStore):
    """A real SQLite store that cannot hand out a salt (its salts table is unwritable)."""

    def daily_salt(self, day: str) -> bytes:
        raise StoreError("database is locked")


def test_no_salt_stores_the_record_without_a_visitor(tmp_path: Path) -> None:
    store = NoSaltStore(tmp_path / "s.db", "sqlite:///s.db")
    body = '{"v":1,"id":"n1","type":"pageview","url":"https://site.example/"}'
    headers = {"Content-Type": "text/plain", "User-Agent": FIREFOX}
    answer = post_to_app(store, content=body, headers=headers)
    records = store.records()
    store.close()
    assert answer.status_code == 204
    assert records[0]["visitor"] is None and records[0]["browser"] == "Firefox 128"
