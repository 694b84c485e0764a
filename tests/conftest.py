"""Helpers shared by the tests."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def require(condition: bool, reason: str) -> None:
    """Skip when the environment lacks something (Chromium, PostgreSQL); fail instead under CI=true.

    CI is where the whole suite must really run, so a missing tool there is an error.
    """
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with no records in it, for each store: a fresh SQLite file, or a fresh
    schema in the PostgreSQL database named by SITEBEACON_TEST_PG (see .ci/postgres.sh)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'records.db'}"
        return
    with postgres_schema() as url:
        yield url


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """The URL of the database named by SITEBEACON_TEST_PG, on a fresh schema of its own,
    dropped afterwards (skip, or fail under CI=true, without that variable)."""
    base = os.environ.get("SITEBEACON_TEST_PG", "")
    require(bool(base), "SITEBEACON_TEST_PG is not set (export it from .ci/postgres.sh)")
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable the browser tests drive (`proof.engines.chromium.find_browser`)."""
    from sitebeacon.errors import SitebeaconError
    from sitebeacon.proof.engines.chromium import find_browser

    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        require(False, "playwright is not installed (pip install 'sitebeacon[verify]')")
    try:
        return find_browser(os.environ.get("SITEBEACON_TEST_BROWSER"))
    except SitebeaconError as error:
        require(False, str(error))
        raise  # unreachable: require() skipped or failed


def _engine(name: str) -> str:
    from sitebeacon.errors import SitebeaconError
    from sitebeacon.proof.engines import locate

    try:
        import websockets  # noqa: F401
    except ImportError:
        require(False, "websockets is not installed (pip install 'sitebeacon[verify]')")
    try:
        locate(name)
    except SitebeaconError as error:
        require(False, str(error))
    return name


@pytest.fixture(scope="session")
def firefox() -> str:
    """ "firefox" when Firefox ESR can be driven here (WebDriver BiDi needs nothing more)."""
    return _engine("firefox")


@pytest.fixture(scope="session")
def webkit() -> str:
    """ "webkit" when WebKitWebDriver, MiniBrowser and Xvfb are all installed."""
    return _engine("webkit")
