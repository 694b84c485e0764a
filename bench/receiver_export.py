"""/collect latency while `sitebeacon export` reads a large SQLite database beside it.

    python bench/receiver_export.py [--rows 1000000] [--rate 200] [--seconds 10]

Fills a SQLite file with `--rows` records, starts `sitebeacon receive` on it, then sends
valid records at a steady `--rate` (four clients, each waiting for its answer) twice: alone,
then while `sitebeacon export --db ... > /dev/null` reads every row. Prints p50/p99/max of each
phase and their ratio. An export is a long read transaction: the receiver's checkpoints
cannot finish past it, and a receiver that waited for them (or for any lock) on its event
loop would stall every request; this shows that it does not.

Run the receiver of another checkout by putting it first on PYTHONPATH (the `before` figure
of the README came from the commit before the change).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from sitebeacon.collect.stores.sqlite import SQLiteStore
from sitebeacon.collect.types import Row


def fill(path: Path, rows: int) -> None:
    store = SQLiteStore(path, f"sqlite:///{path}")
    try:
        data = json.dumps({"visible_ms": 1234, "scroll": 0.5})
        for start in range(0, rows, 20_000):
            batch = [
                Row(f"seed-{n}", "2024-05-01T12:00:00.000Z", "pageview",
                    f"https://site.example/page{n % 500}", "https://ref.example/", None,
                    "beacon", "text/plain", "no-cors", 0, 1_700_000_000_000 + n, data, False)
                for n in range(start, min(rows, start + 20_000))
            ]  # fmt: skip
            store.add(batch)
    finally:
        store.close()


def measure(base: str, rate: float, seconds: float, prefix: str) -> list[float]:
    """Latencies of records sent at `rate` per second in all by four clients."""
    latencies: list[float] = []
    failures: list[int] = []
    stop = time.monotonic() + seconds

    def client(worker: int) -> None:
        interval = 4 / rate
        with httpx.Client(base_url=base, timeout=60) as http:
            n = 0
            next_at = time.monotonic()
            while time.monotonic() < stop:
                body = json.dumps(
                    {"v": 1, "id": f"{prefix}{worker}-{n}", "type": "pageview",
                     "url": "https://site.example/"}
                )  # fmt: skip
                n += 1
                started = time.perf_counter()
                answer = http.post("/collect", content=body, headers={"Content-Type": "text/plain"})
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 204:
                    failures.append(answer.status_code)
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

    threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"FAILED: {len(failures)} answers other than 204: {set(failures)}")
    return latencies


def summary(name: str, latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000
    print(
        f"{name:<16} {len(ordered):>6} records  p50 {p50:6.2f} ms  p99 {p99:7.2f} ms  "
        f"max {ordered[-1] * 1000:7.1f} ms"
    )
    return p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="sitebeacon-bench-export-"))
    path = workdir / "big.db"
    started = time.monotonic()
    fill(path, args.rows)
    print(
        f"{args.rows:,} rows in {path.stat().st_size / 1e6:.0f} MB "
        f"({time.monotonic() - started:.0f} s to fill); {args.rate:g} records/s; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    db_url = f"sqlite:///{path}"
    receiver = subprocess.Popen(
        [sys.executable, "-m", "sitebeacon.cli", "receive", "--db", db_url, "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stderr is not None
        match = re.search(r"(http://[\d.]+:\d+)/collect", receiver.stderr.readline())
        if not match:
            raise SystemExit("the receiver did not start")
        base = match.group(1)
        measure(base, args.rate, 1, "warm")
        alone = measure(base, args.rate, args.seconds, "alone")
        export = subprocess.Popen(
            [sys.executable, "-m", "sitebeacon.cli", "export", "--db", db_url],
            stdout=subprocess.DEVNULL,
        )
        export_started = time.monotonic()
        beside: list[float] = []
        round_number = 0
        while export.poll() is None:  # measure for as long as the export runs
            beside += measure(base, args.rate, min(args.seconds, 5), f"beside{round_number}-")
            round_number += 1
        export_seconds = time.monotonic() - export_started
        if export.returncode != 0:
            raise SystemExit(f"export failed with {export.returncode}")
    finally:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=120)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"export of {args.rows:,} rows took {export_seconds:.1f} s")
    _, p99_alone = summary("alone", alone)
    _, p99_beside = summary("export beside", beside)
    print(f"p99 with the export / p99 alone: {p99_beside / p99_alone:.2f}")


if __name__ == "__main__":
    main()
