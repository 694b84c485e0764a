"""Process bookkeeping the drivers share: each browser runs in a process group of its own, so a
crash can be caused in its content processes and nothing outlives it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from sitebeacon.errors import SitebeaconError


def find_executable(names: tuple[str, ...], package: str, what: str) -> str:
    """The first of `names` (a name on PATH or an absolute path) that can be run."""
    for name in names:
        found = name if os.path.isabs(name) else shutil.which(name)
        if found and os.path.isfile(found) and os.access(found, os.X_OK):
            return found
    raise SitebeaconError(
        f"no {what} found (looked for {', '.join(names)}); install it (Debian/Ubuntu:"
        f" apt-get install {package})"
    )


def executable_version(executable: str) -> str:
    """`/usr/bin/chromium (Chromium 156.0...)`: the program and what its `--version` prints,
    or the program alone when it will not say (a report still runs without it)."""
    try:
        result = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return executable
    version = result.stdout.strip()
    return f"{executable} ({version})" if version else executable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_group(
    *argv: str, env: dict[str, str] | None = None, stderr: int = subprocess.DEVNULL
) -> asyncio.subprocess.Process:
    """`argv` as the leader of a process group of its own: the browser's helper processes join
    it, so `group_processes` finds them and `end_group` ends them all."""
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env=env,
        start_new_session=True,
    )


def group_processes(group: int) -> list[tuple[int, list[str]]]:
    """(pid, argv) of every process in process group `group` (Linux /proc)."""
    found: list[tuple[int, list[str]]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) == group:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
                argv = [arg for arg in argv if arg]
                found.append((int(entry.name), argv))
        except (OSError, ValueError, IndexError):
            continue
    return found


async def kill_processes(pids: list[int], timeout: float = 10) -> bool:
    """SIGKILL `pids`; whether all of them are gone within `timeout` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if not any(Path(f"/proc/{pid}/stat").exists() and _alive(pid) for pid in pids):
            return bool(pids)
        await asyncio.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


async def end_group(process: asyncio.subprocess.Process | None, timeout: float = 5) -> None:
    """SIGTERM the process group led by `process`, then SIGKILL what is left of it."""
    if process is None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            await asyncio.wait_for(process.wait(), timeout)
            break
        except TimeoutError:
            continue
    with contextlib.suppress(ProcessLookupError):  # helpers that outlived the leader
        os.killpg(process.pid, signal.SIGKILL)
