"""A store that takes every row and keeps none, for the benchmarks that measure the receiver's
own cost without a database (bench/receiver.py's "parse" server, bench/collect_path.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sitebeacon.collect.stores import Store


class DiscardStore(Store):
    """Takes every row and keeps none: the receiver's own cost without a database."""

    url = "discard:"
    slow_writes = False  # batches are "written" on the event loop, as SQLite's are

    def add(self, rows: Any) -> None:
        pass

    def iter_records(self) -> Any:
        return iter(())

    def count(self) -> int:
        return 0

    def daily_salt(self, day: str) -> bytes:
        return bytes(32)

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return []

    def put_summaries(self, version: int, summaries: Any) -> None:
        pass

    def drop_summaries(self, days: Any) -> None:
        pass

    def close(self) -> None:
        pass
