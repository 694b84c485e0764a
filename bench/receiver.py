"""Receiver throughput: `sitebeacon receive` with SQLite against the same uvicorn answering a
bare 204, driven by wrk, in one run.

    python bench/receiver.py [--duration 10] [--connections 64] [--rounds 3] [--ids random]

Each round runs, one after the other, three servers on the same uvicorn configuration
(`sitebeacon.collect.server.uvicorn_config`), each in its own process:

- bare:   reads the body and answers 204; stores nothing, checks nothing (the baseline);
- parse:  the real receiver app, records checked, written to a store that discards them;
- stored: the real `sitebeacon receive --db sqlite:///...` (group commit, 204 after commit).

wrk (Debian's) sends one valid record per request, each with its own id (a per-thread
counter in Lua; with `--ids random`, behind a random prefix, as the client module's ids are:
a harder case for the store, whose unique index on id then takes inserts all over). Its
`response()` hook counts 204 answers per thread; `done()` sums them.
After the stored run the server gets SIGTERM and the rows in the SQLite file are counted:
every 204 must be a row. wrk stops at the deadline without reading the answers still in
flight, so a few more rows than 204s (at most one per connection) are expected, never fewer.

Rounds alternate the servers so that a busy machine slows all of them alike; the figures
reported are medians over rounds, and the ratio is taken within each round.
Server CPU time per request (from /proc) is printed too: it hardly depends on machine load.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LUA = r"""
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(os.time() * 100 + tid)
  n = 0
  ok = 0
  other = 0
end
function request()
  n = n + 1
  local body = '{"v":1,"id":"' .. ID .. '","type":"leave","url":"https://site.example/page'
    .. (n % 50) .. '","ts":1700000000000,"transport":"beacon","seq":0,"data":{"visible_ms":'
    .. n .. '}}'
  return wrk.format("POST", nil, HEADERS, body)
end
function response(status, headers, body)
  if status == 204 then ok = ok + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local total_ok, total_other, sent = 0, 0, 0
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_other = total_other + t:get("other")
    sent = sent + t:get("n")
  end
  io.write(string.format("RESULT ok=%d other=%d sent=%d p50=%d p99=%d duration=%d\n",
    total_ok, total_other, sent, latency:percentile(50), latency:percentile(99),
    summary.duration))
end
""".replace(
    "HEADERS",
    '{["Content-Type"]="text/plain;charset=UTF-8", ["User-Agent"]="Mozilla/5.0 (X11; Linux '
    'x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", '
    '["Sec-Fetch-Mode"]="no-cors"}',
)

IDS = {
    # b<thread>-<n>: each new id sorts next to the last one, so the unique index on id grows at
    # its end, as it would for time-ordered ids.
    "sequential": "'b' .. tid .. '-' .. n",
    # Like the client module's ids (random base-36 text first): every insert lands on a random
    # page of that index, so each transaction writes many more pages.
    "random": "string.format('%08x%06x', math.random(0, 0x7fffffff), math.random(0, 0xffffff))"
    " .. 'b' .. tid .. '-' .. n",
}

SERVERS = ("bare", "parse", "stored")


@dataclass
class Run:
    server: str
    ok: int
    other: int
    sent: int
    p50_ms: float
    p99_ms: float
    seconds: float
    cpu_us_per_request: float
    rows: int | None = None

    @property
    def rate(self) -> float:
        return self.ok / self.seconds


# --- the two baseline servers (run as `python bench/receiver.py --serve KIND --port N`) ----


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body and answers 204: what the HTTP stack alone costs."""
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def serve_baseline(kind: str, port: int, db: str | None = None) -> None:
    from discard import DiscardStore

    from sitebeacon.collect.app import create_app
    from sitebeacon.collect.server import bind_socket, run_server

    if kind == "stored-plain":  # `sitebeacon receive` as it was before visitors/client class
        from sitebeacon.collect.stores import open_store

        store = open_store(f"sqlite:///{db}")
        plain = create_app(store, visitors=False, client_class=False)
        try:
            run_server(plain, bind_socket("127.0.0.1", port))
        finally:
            plain.close()
            store.close()
        return
    app: Any = bare_app if kind == "bare" else create_app(DiscardStore())
    run_server(app, bind_socket("127.0.0.1", port))


# --- the driver --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


DASHBOARD_TOKEN = "bench-token"


def start(server: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    if server in ("stored", "dash"):
        command = [
            sys.executable,
            "-m",
            "sitebeacon.cli",
            "receive",
            "--port",
            str(port),
            "--db",
            f"sqlite:///{workdir / 'bench.db'}",
        ]
        if server == "dash":
            command += ["--dashboard-token", DASHBOARD_TOKEN]
    elif server == "plain":
        command = [sys.executable, __file__, "--serve", "stored-plain", "--port", str(port)]
        command += ["--db", str(workdir / "bench.db")]
    else:
        command = [sys.executable, __file__, "--serve", server, "--port", str(port)]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    wait_listening(port, process)
    return process


def poll_dashboard(port: int, stop: threading.Event) -> None:
    url = f"http://127.0.0.1:{port}/dashboard?token={DASHBOARD_TOKEN}&days=1"
    while not stop.wait(1.0):
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                answer.read()
        except OSError:
            pass


def wrk(port: int, script: Path, args: argparse.Namespace, seconds: float) -> dict[str, int]:
    result = subprocess.run(
        [
            "wrk",
            f"-t{args.threads}",
            f"-c{args.connections}",
            f"-d{round(seconds)}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/collect",
        ],
        capture_output=True,
        text=True,
    )
    match = re.search(r"RESULT (.*)", result.stdout)
    if result.returncode != 0 or not match:
        raise SystemExit(f"wrk gave no result:\n{result.stdout}\n{result.stderr}")
    return {key: int(value) for key, value in (pair.split("=") for pair in match.group(1).split())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--ids",
        choices=sorted(IDS),
        default="sequential",
        help="how the record ids wrk sends are made (default: sequential)",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="also run `plain` (no visitors, no client class: the receiver before the report)"
        " and `dash` (stored, with the dashboard open and polled every second)",
    )
    parser.add_argument(
        "--serve", choices=["bare", "parse", "stored-plain"], help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_baseline(args.serve, args.port, args.db)
        return
    global SERVERS
    if args.report:
        SERVERS = ("bare", "parse", "plain", "stored", "dash")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    workdir = Path(tempfile.mkdtemp(prefix="sitebeacon-bench-lua-"))
    script = workdir / "records.lua"
    script.write_text(LUA.replace("ID", IDS[args.ids]))
    warm_script = workdir / "warm.lua"
    warm_script.write_text(
        LUA.replace("https://site.example/page", "https://warm.example/page").replace(
            "ID", "'w' .. tid .. '-' .. n"
        )
    )
    print(
        f"wrk: {args.threads} thread(s), {args.connections} connections, {args.duration:g} s "
        f"per run, {args.rounds} round(s), {args.ids} ids; {os.cpu_count()} CPUs; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    runs: dict[str, list[Run]] = {server: [] for server in SERVERS}
    ratios: list[float] = []
    lost_total = 0
    for round_number in range(1, args.rounds + 1):
        for server in SERVERS:
            run = one_run(server, args, script, warm_script)
            runs[server].append(run)
            extra = ""
            if run.rows is not None:
                lost = max(0, run.ok - run.rows)
                lost_total += lost
                extra = (
                    f"  rows {run.rows}, 204s {run.ok}, in flight at stop "
                    f"{run.rows - run.ok}, lost {lost}"
                )
            print(
                f"round {round_number} {server:<6} {run.rate:>9,.0f} req/s  p50 "
                f"{run.p50_ms:5.2f} ms  p99 {run.p99_ms:6.2f} ms  non-204 {run.other}  "
                f"cpu {run.cpu_us_per_request:5.1f} us/req{extra}"
            )
        ratios.append(runs["stored"][-1].rate / runs["bare"][-1].rate)
    shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"{'server':<8}{'req/s (median)':>16}{'p50 ms':>9}{'p99 ms':>9}{'cpu us/req':>12}")
    for server in SERVERS:
        rate = statistics.median(run.rate for run in runs[server])
        p50 = statistics.median(run.p50_ms for run in runs[server])
        p99 = statistics.median(run.p99_ms for run in runs[server])
        cpu = statistics.median(run.cpu_us_per_request for run in runs[server])
        print(f"{server:<8}{rate:>16,.0f}{p50:>9.2f}{p99:>9.2f}{cpu:>12.1f}")
    stored_rate = statistics.median(run.rate for run in runs["stored"])
    ratio = statistics.median(ratios)
    cpu_ratio = statistics.median(
        run.cpu_us_per_request for run in runs["bare"]
    ) / statistics.median(run.cpu_us_per_request for run in runs["stored"])
    rows = sum(run.rows or 0 for run in runs["stored"])
    answered = sum(run.ok for run in runs["stored"])
    print()
    print(f"records persisted: {stored_rate:,.0f}/s (goal 30,000)")
    print(
        f"stored / bare 204: {ratio:.0%} (median of per-round ratios; goal 60%); "
        f"by server CPU per request: {cpu_ratio:.0%}"
    )
    print(f"204 answers {answered}, rows {rows}, records answered 204 but missing: {lost_total}")
    other = sum(run.other for server in SERVERS for run in runs[server])
    if args.report:
        for name, over in (("stored / plain", "plain"), ("dash / stored", "stored")):
            within = [
                now.rate / then.rate
                for now, then in zip(runs[name.split(" / ")[0]], runs[over], strict=True)
            ]
            print(f"{name}: {statistics.median(within):.0%} (median of per-round ratios)")
    if lost_total or other:
        raise SystemExit(f"FAILED: {lost_total} accepted records missing, {other} non-204 answers")


def one_run(server: str, args: argparse.Namespace, script: Path, warm_script: Path) -> Run:
    workdir = Path(tempfile.mkdtemp(prefix="sitebeacon-bench-"))
    port = free_port()
    process = start(server, port, workdir)
    stop = threading.Event()
    try:
        warm = wrk(port, warm_script, args, 1)
        if server == "dash":  # the dashboard open in a browser polls; here, every second
            threading.Thread(target=poll_dashboard, args=(port, stop), daemon=True).start()
        before = cpu_seconds(process.pid)
        figures = wrk(port, script, args, args.duration)
        cpu = cpu_seconds(process.pid) - before
    finally:
        stop.set()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=120)
    if code != 0:
        raise SystemExit(f"{server} server exited with {code}")
    run = Run(
        server=server,
        ok=figures["ok"],
        other=figures["other"] + warm["other"],
        sent=figures["sent"],
        p50_ms=figures["p50"] / 1000,
        p99_ms=figures["p99"] / 1000,
        seconds=figures["duration"] / 1e6,
        cpu_us_per_request=cpu / max(1, figures["ok"]) * 1e6,
    )
    if server in ("stored", "plain", "dash"):
        db = sqlite3.connect(workdir / "bench.db")
        (rows,) = db.execute(
            "SELECT count(*) FROM records WHERE url LIKE 'https://site.example/%'"
        ).fetchone()
        db.close()
        run.rows = int(rows)
    shutil.rmtree(workdir, ignore_errors=True)
    return run


if __name__ == "__main__":
    main()
