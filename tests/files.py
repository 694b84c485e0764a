"""Small helpers the tests share: write a file, snapshot a tree, run the CLI as a user would."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from sitebeacon.collect.app import create_app
from sitebeacon.collect.stores import Store
from sitebeacon.collect.types import Row

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_site"
"""The sample site the build, verify and CLI tests start from."""


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root, by relative path, with its bytes."""
    if not root.exists():
        return {}
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def run_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`sitebeacon ARGS` in a subprocess, importing the package the way an install would."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-m", "sitebeacon.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_receiver(db_url: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """`sitebeacon receive` in a process of its own on a free port: (process, base URL)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sitebeacon.cli", "receive", "--db", db_url, "--port", "0", *extra],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)/collect", line)
    assert match, line
    return process, match.group(1)


def post_to_app(store: Store, **request: Any) -> httpx.Response:
    """POST /collect (httpx's `request` arguments) to the receiver's ASGI app on `store`, in this
    process: for stores made to fail, which no running receiver can be given."""
    app = create_app(store)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post("/collect", **request)

    try:
        return asyncio.run(post())
    finally:
        app.close()


def make_row(record_id: str = "r1", **fields: Any) -> Row:
    """A stored row as the receiver makes it (a page view by beacon), with `fields` changed."""
    base = Row(
        id=record_id,
        received_at="2024-05-01T12:00:00.123Z",
        type="pageview",
        url="https://a.example/",
        referrer=None,
        target=None,
        transport="beacon",
        content_type="text/plain;charset=UTF-8",
        fetch_mode="no-cors",
        seq=0,
        ts=None,
        data=None,
        bot=False,
    )
    return base._replace(**fields)
