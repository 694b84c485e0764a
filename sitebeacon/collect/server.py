"""Run the receiver under uvicorn: bind, serve until a signal, commit what was accepted.

The app (`app.py`) never imports the server; this module imports the app, as uvicorn imports
Starlette's. Any ASGI server can run `create_app(...)` instead.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from sitebeacon.collect.app import create_app
from sitebeacon.collect.stores import open_store
from sitebeacon.collect.types import ASGIApp
from sitebeacon.errors import SitebeaconError


def uvicorn_config(app: ASGIApp, **overrides: Any) -> Any:
    """One uvicorn configuration for `serve`, `running_receiver` and the benchmark."""
    import uvicorn

    options: dict[str, Any] = {
        "loop": "auto",  # uvloop when installed (uvicorn[standard])
        "http": "auto",  # httptools when installed
        "ws": "none",
        "lifespan": "on",
        "access_log": False,
        "log_config": None,  # leave the host process's logging alone
        "log_level": "warning",
        "server_header": False,
        "proxy_headers": False,
        "timeout_graceful_shutdown": 30,
        **overrides,
    }
    return uvicorn.Config(app, **options)


def _mount(store: Any, app_options: dict[str, Any]) -> None:
    """Turn `mounts_for(store) -> {prefix: app}` into `mounts` once the store is open."""
    mounts_for = app_options.pop("mounts_for", None)
    if mounts_for is not None:
        app_options["mounts"] = {**app_options.get("mounts", {}), **mounts_for(store)}


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before serving, so a busy port is a clear error and port 0 yields a known port."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # connections queue from now on, before uvicorn starts accepting
    except OSError as error:
        reason = error.strerror or error
        raise SitebeaconError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def _base_url(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_server(app: ASGIApp, sock: socket.socket) -> None:
    """Serve `app` on `sock` in this (main) thread until SIGTERM or SIGINT, then return.

    uvicorn stops accepting, lets the requests in progress finish, runs the lifespan shutdown
    (which commits every accepted row) and then re-raises the signal it caught; the handlers
    installed here make that re-raise harmless, so the process exits 0 instead of dying.
    """
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app))

    def on_signal(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(
    db_url: str,
    host: str,
    port: int,
    path: str,
    allow_origins: Iterable[str],
    site_dir: Path | None,
    **app_options: Any,
) -> None:
    """Run until SIGTERM/SIGINT; then stop accepting, commit everything accepted, and return.

    `app_options` go to `create_app` (visitors, trusted_proxies, mounts...); a callable
    `mounts_for(store)` builds mounts that need the open store (the dashboard).
    """
    logging.basicConfig(level=logging.WARNING, format="sitebeacon: %(message)s")
    store = open_store(db_url)
    try:
        _mount(store, app_options)
        app = create_app(
            store, path=path, allow_origins=allow_origins, site_dir=site_dir, **app_options
        )
        try:
            sock = bind_socket(host, port)
            base = _base_url(sock, host)
            print(
                f"sitebeacon: receiving on {base}{path}, storing in {db_url}",
                file=sys.stderr,
                flush=True,
            )
            if site_dir is not None:
                print(f"sitebeacon: serving {site_dir} at {base}/", file=sys.stderr, flush=True)
            run_server(app, sock)
        finally:
            app.close()
    finally:
        store.close()


@contextlib.contextmanager
def running_receiver(
    db_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = "/collect",
    allow_origins: Iterable[str] = (),
    site_dir: Path | None = None,
    **app_options: Any,
) -> Iterator[str]:
    """A receiver on a background thread for tests and `verify`: yields `http://host:port`.

    Every request answered 204 is committed, so `open_store(db_url).records()` sees it at
    once; on exit the server stops and the store is closed.
    """
    import uvicorn

    store = open_store(db_url)
    try:
        _mount(store, app_options)
        app = create_app(
            store, path=path, allow_origins=allow_origins, site_dir=site_dir, **app_options
        )
        sock = bind_socket(host, port)
        server = uvicorn.Server(uvicorn_config(app))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="sitebeacon-receiver", daemon=True
        )
        thread.start()
        try:
            deadline = time.monotonic() + 15
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise SitebeaconError("the receiver did not start")
                time.sleep(0.01)
            yield _base_url(sock, host)
        finally:
            server.should_exit = True
            thread.join(timeout=40)
            app.close()
            sock.close()
    finally:
        store.close()
