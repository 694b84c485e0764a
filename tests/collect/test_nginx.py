"""The README's nginx example, run for real (Debian's nginx on loopback) in front of the real
receiver: records pass, bodies over 64 KiB get 413 from nginx, and stalled headers and bodies
are closed by nginx within its 10 s deadlines without ever reaching the receiver."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sitebeacon.collect.server import running_receiver
from sitebeacon.collect.stores import open_store
from tests.conftest import require

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_server_block() -> str:
    """The ```nginx block of the README's "Safe on the open internet" section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Safe on the open internet") :]
    match = re.search(r"```nginx\n(.*?)```", section, re.S)
    assert match, "no nginx example in the README section"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """nginx with the README's server block on a free port, in front of a receiver."""
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    require(nginx is not None, "nginx is not installed (apt-get install nginx-light)")
    assert nginx is not None
    db_url = f"sqlite:///{tmp_path / 'n.db'}"
    with running_receiver(db_url) as base:
        receiver_port = base.rsplit(":", 1)[1]
        port = free_port()
        block = readme_server_block()
        assert "listen 80;" in block and "127.0.0.1:8787" in block
        block = block.replace("listen 80;", f"listen 127.0.0.1:{port};")
        block = block.replace("127.0.0.1:8787", f"127.0.0.1:{receiver_port}")
        temp = tmp_path / "nginx"
        temp.mkdir()
        user = "user root;\n" if os.geteuid() == 0 else ""
        config = temp / "nginx.conf"
        config.write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {temp}/nginx.pid;\n"
            f"error_log {temp}/error.log;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n access_log off;\n client_body_temp_path {temp}/body;\n"
            f" proxy_temp_path {temp}/proxy;\n fastcgi_temp_path {temp}/fastcgi;\n"
            f" uwsgi_temp_path {temp}/uwsgi;\n scgi_temp_path {temp}/scgi;\n{block}\n}}\n"
        )
        process = subprocess.Popen(
            [nginx, "-c", str(config), "-p", str(temp)], stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert process.poll() is None, process.stderr.read() if process.stderr else ""
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{port}", db_url
        finally:
            process.terminate()
            process.wait(timeout=30)


def record(record_id: str) -> bytes:
    return json.dumps(
        {"v": 1, "id": record_id, "type": "pageview", "url": "https://site.example/"}
    ).encode()


def test_the_readme_nginx_example_passes_records_and_cuts_off_slow_clients(
    proxied: tuple[str, str],
) -> None:
    base, db_url = proxied
    answer = httpx.post(
        f"{base}/collect", content=record("via-nginx"), headers={"Content-Type": "text/plain"}
    )
    assert answer.status_code == 204
    big = record("big") + b" " * 65_536
    answer = httpx.post(f"{base}/collect", content=big, headers={"Content-Type": "text/plain"})
    assert answer.status_code == 413

    port = int(base.rsplit(":", 1)[1])
    head = b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
    stalled = {
        "header": b"POST /coll",
        "body": head + b"Content-Length: 60000\r\n\r\n" + b" " * 1000,
    }
    sockets = {}
    started = time.monotonic()
    for name, sent in stalled.items():
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(sent)
        sockets[name] = sock
    closed_after = {}
    for name, sock in sockets.items():
        with sock:
            received = b""
            try:
                while chunk := sock.recv(4096):
                    received += chunk
            except ConnectionResetError:
                pass
            closed_after[name] = time.monotonic() - started
            assert b" 204 " not in received
    print(f"\nnginx closed the stalled connections after {closed_after}")
    assert max(closed_after.values()) < 20, closed_after  # nginx's 10 s, not the socket's 30 s
    with open_store(db_url) as store:
        assert [row["id"] for row in store.records()] == ["via-nginx"]
