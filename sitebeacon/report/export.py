"""`sitebeacon export`: every stored record as JSON lines, the same from either store."""

from __future__ import annotations

import json
from typing import TextIO

from sitebeacon.collect.stores import open_store


def export_records(db_url: str, out: TextIO) -> int:
    """Write every stored record as one JSON object per line; return how many."""
    count = 0
    store = open_store(db_url, create=False)
    try:
        for record in store.iter_records():
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
            count += 1
    finally:
        store.close()
    return count
