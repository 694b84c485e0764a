"""`scripts/demo.sh`, run as a user would: set-up, build, servers, a real headless reader, and
what the receiver stored; on the same origin and on a second one; and its failures, one line."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "scripts" / "demo.sh"


def free_port_pair() -> int:
    """A port P with P + 1 free too (the cross-origin demo's receiver)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if port >= 65534:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise AssertionError("no pair of free ports")


def demo(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DEMO), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def stored(db: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "sitebeacon"), "export", "--db", db],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture
def sample_config() -> Iterator[bytes]:
    """The committed sample config, which no demo may change."""
    path = REPO / "sample_site" / "sitebeacon.toml"
    before = path.read_bytes()
    yield before
    assert path.read_bytes() == before


@pytest.mark.parametrize("cross_origin", [False, True], ids=["same-origin", "cross-origin"])
def test_demo_click_stores_the_readers_visit(
    chromium: str, tmp_path: Path, sample_config: bytes, cross_origin: bool
) -> None:
    port = free_port_pair()
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    flags = ["--cross-origin"] if cross_origin else []
    done = demo("--click", *flags, "--port", str(port), "--db", db)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout
    records = stored(db)
    clicked = [line for line in done.stderr.splitlines() if line.startswith("demo: clicking ")]
    assert len(clicked) == 1
    post = f"http://127.0.0.1:{port}" + clicked[0].removeprefix("demo: clicking ")
    index = f"http://127.0.0.1:{port}/"
    kinds = {(record["type"], record["url"]) for record in records}
    assert {("pageview", index), ("leave", index), ("pageview", post)} <= kinds
    leave = next(r for r in records if r["type"] == "leave" and r["url"] == index)
    assert isinstance(leave["data"], dict) and int(leave["data"]["visible_ms"]) > 0
    # The demo printed what was stored, as it was stored.
    printed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert printed and all(record in records for record in printed)
    if cross_origin:
        receiver = f"http://127.0.0.1:{port + 1}/collect"
        assert f"receiver: {receiver}" in done.stdout
        assert f"--allow-origin http://127.0.0.1:{port}" in done.stdout
    else:
        assert "receiver:" not in done.stdout


def test_demo_failures_are_one_line(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = int(busy.getsockname()[1])
    try:
        done = demo("--port", str(port), "--db", f"sqlite:///{tmp_path / 'x.db'}")
    finally:
        busy.close()
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"demo: port {port} is already in use (choose another with --port)"
    ]

    port = free_port_pair()
    done = demo("--port", str(port), "--db", f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    assert done.returncode == 2
    missing = tmp_path / "missing"
    assert done.stderr.splitlines() == [
        f"sitebeacon: cannot create {missing / 'x.db'}: directory {missing} does not exist"
    ]

    done = demo("--clik")
    assert (done.returncode, done.stderr.splitlines()) == (
        2,
        ["demo: unknown option --clik (use --click, --cross-origin, --port N, --db URL)"],
    )


def test_demo_click_without_chromium_says_so_in_one_line(tmp_path: Path) -> None:
    """What a fresh machine met before the demo installed Chromium: now one line, no traceback."""
    done = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "python"),
            str(REPO / "scripts" / "demo_click.py"),
            "http://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("demo: no Chromium found on PATH")
