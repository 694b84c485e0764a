"""Where records land: the store interface and `open_store(url)`, which picks the store.

The factory lives here, above both stores, so neither store imports the other.
"""

from __future__ import annotations

from sitebeacon.collect.stores.base import COLUMNS, Store, StoreError, iso_utc, row_dict
from sitebeacon.errors import SitebeaconError

__all__ = ["COLUMNS", "Store", "StoreError", "iso_utc", "open_store", "row_dict"]


def open_store(url: str, *, create: bool = True) -> Store:
    """`sqlite:///rel.db`, `sqlite:////abs.db` or `postgresql://...`.

    With `create=False` (export, stats) a missing SQLite file is an error rather than a new,
    empty database that would hide a mistyped path.
    """
    if url.startswith("sqlite:///"):
        from sitebeacon.collect.stores.sqlite import SQLiteStore, sqlite_path

        return SQLiteStore(sqlite_path(url, create=create), url)
    if url.startswith(("postgresql://", "postgres://")):
        from sitebeacon.collect.stores.postgres import PostgresStore

        return PostgresStore(url)
    raise SitebeaconError(
        f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
    )
