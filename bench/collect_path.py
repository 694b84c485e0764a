"""What visitors and the client class add to one /collect request, in process (CPU time, no
network, no database), so the figure holds on a busy machine where wrk's req/s do not.

Drives the real ASGI app with a store that keeps nothing, alternating the variants round by
round: plain (both off), +class, +visitors, both (the default).

    python bench/collect_path.py --requests 50000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from discard import DiscardStore

from sitebeacon.collect.app import create_app

UA = (
    b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/131.0.0.0 Safari/537.36"
)


async def drive(app: Any, requests: int, clients: int) -> float:
    app.writer.start()
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    start = time.process_time()
    for n in range(requests):
        body = b'{"v":1,"id":"id%d","type":"pageview","url":"https://site.example/p"}' % n
        message = {"type": "http.request", "body": body, "more_body": False}

        async def receive(message: Any = message) -> Any:
            return message

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/collect",
            "client": (f"10.0.{n % clients // 250}.{n % 250}", 40000),
            "headers": [
                (b"host", b"site.example"),
                (b"content-type", b"text/plain;charset=UTF-8"),
                (b"user-agent", UA),
                (b"origin", b"https://site.example"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
        await app(scope, receive, send)
        if len(sent) > 10_000:
            sent.clear()
    elapsed = time.process_time() - start
    app.close()
    return elapsed / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=2000, help="distinct client addresses")
    args = parser.parse_args()
    variants = {
        "plain": {"visitors": False, "client_class": False},
        "+class": {"visitors": False, "client_class": True},
        "+visitors": {"visitors": True, "client_class": False},
        "both (default)": {"visitors": True, "client_class": True},
    }
    figures: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, options in variants.items():
            app = create_app(DiscardStore(), **options)
            figures[name].append(asyncio.run(drive(app, args.requests, args.clients)))
    base = statistics.median(figures["plain"])
    print(f"{args.requests} requests x {args.rounds} rounds, {args.clients} client addresses")
    print(f"{'variant':<16}{'CPU µs/request':>16}{'÷ plain':>10}")
    for name, values in figures.items():
        value = statistics.median(values)
        print(f"{name:<16}{value:>16.2f}{value / base:>10.3f}")


if __name__ == "__main__":
    main()
