"""Two checkouts' `sitebeacon receive` side by side, under the same load at the same time.

    python bench/receiver_ab.py /path/to/other/checkout [--duration 10] [--rounds 3]

On a shared machine, runs one after the other see different loads; two servers driven at the
same moment by two wrk processes see the same one. Each round starts `sitebeacon receive` on
SQLite from this checkout (`new`) and from the other one (`old`, put first on PYTHONPATH),
drives both at once with `bench/receiver.py`'s wrk script, and compares the server CPU time
per record answered 204 (from /proc): the ratio new / old is the cost of a change to the
collect path, whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from receiver import IDS, LUA, cpu_seconds, free_port, wait_listening, wrk

HERE = Path(__file__).resolve().parents[1]


def start(checkout: Path, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    command = [sys.executable, "-m", "sitebeacon.cli", "receive", "--port", str(port)]
    command += ["--db", f"sqlite:///{workdir / 'bench.db'}"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, env=env, cwd=workdir)
    wait_listening(port, process)
    return process


def drive(
    figures: dict[str, dict[str, int]],
    name: str,
    port: int,
    script: Path,
    args: argparse.Namespace,
) -> None:
    figures[name] = wrk(port, script, args, args.duration)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="the other checkout (its top directory)")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    sides = {"new": HERE, "old": args.other.resolve()}
    workdir = Path(tempfile.mkdtemp(prefix="sitebeacon-bench-ab-"))
    script = workdir / "records.lua"
    script.write_text(LUA.replace("ID", IDS["sequential"]))
    print(
        f"new: {sides['new']}, old: {sides['old']}; wrk -t{args.threads} "
        f"-c{args.connections} on each, {args.duration} s, {args.rounds} rounds; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    ratios: list[float] = []
    per_side: dict[str, list[float]] = {"new": [], "old": []}
    for round_number in range(1, args.rounds + 1):
        processes: dict[str, subprocess.Popen[bytes]] = {}
        ports: dict[str, int] = {}
        figures: dict[str, dict[str, int]] = {}
        cpu: dict[str, float] = {}
        try:
            for name, checkout in sides.items():
                side_dir = workdir / f"{name}{round_number}"
                side_dir.mkdir()
                ports[name] = free_port()
                processes[name] = start(checkout, ports[name], side_dir)
            before = {name: cpu_seconds(process.pid) for name, process in processes.items()}

            threads = [
                threading.Thread(target=drive, args=(figures, name, ports[name], script, args))
                for name in sides
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for name, process in processes.items():
                cpu[name] = cpu_seconds(process.pid) - before[name]
        finally:
            for process in processes.values():
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=120)
        line = []
        for name in sides:
            us = cpu[name] / max(1, figures[name]["ok"]) * 1e6
            per_side[name].append(us)
            rate = figures[name]["ok"] / (figures[name]["duration"] / 1e6)
            line.append(f"{name} {rate:8,.0f} req/s {us:5.1f} us/req")
        ratios.append(per_side["new"][-1] / per_side["old"][-1])
        print(f"round {round_number}: " + ",  ".join(line) + f",  new/old {ratios[-1]:.3f}")
    shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"server CPU per record, median: new {statistics.median(per_side['new']):.1f} us, "
        f"old {statistics.median(per_side['old']):.1f} us; new / old "
        f"{statistics.median(ratios):.3f} (median of per-round ratios)"
    )


if __name__ == "__main__":
    main()
