"""A browser process of our own, driven over a WebSocket: what raw CDP (Chromium) and WebDriver
BiDi (Firefox) share.

Both start the browser with a throwaway profile in a process group of its own, wait until it
says where its WebSocket listens, then send numbered JSON commands and match the answers by
`id`; a message with a `method` and no waiting `id` is an event for the listeners. Each
subclass says how to launch its browser, where to read the address, and how its protocol
answers (`call`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sitebeacon.errors import SitebeaconError
from sitebeacon.proof.engines.processes import end_group, start_group

Message = dict[str, Any]


class RemoteBrowser(ABC):
    """One browser process, its profile directory and its WebSocket."""

    name = ""  # "chromium": the profile directory's prefix
    protocol = ""  # "remote debugging": for the error when the browser will not serve it
    closed: type[Exception] = Exception  # what a command gets when the connection goes away

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.profile = Path(tempfile.mkdtemp(prefix=f"sitebeacon-{self.name}-"))
        self.process: asyncio.subprocess.Process | None = None
        self._socket: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Message]] = {}
        self.listeners: list[Callable[[Message], None]] = []

    @abstractmethod
    async def launch(self) -> None:
        """Start the browser (`spawn`) on `self.profile`."""

    @abstractmethod
    async def address(self) -> str:
        """The WebSocket URL to connect to, once the browser has said it."""

    async def spawn(self, *args: str, **options: Any) -> asyncio.subprocess.Process:
        self.process = await start_group(self.executable, *args, **options)
        return self.process

    async def start(self, timeout: float = 60) -> None:
        from websockets.asyncio.client import connect

        try:
            await self.launch()
            try:
                address = await asyncio.wait_for(self.address(), timeout)
            except TimeoutError:
                raise SitebeaconError(
                    f"{self.executable} did not start ({self.protocol})"
                ) from None
            self._socket = await connect(address, max_size=None, open_timeout=30)
        except BaseException:
            await self.close()
            raise
        self._tasks.append(asyncio.create_task(self._read()))

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self._socket:
                message = json.loads(raw)
                waiter = self._waiting.pop(message.get("id", -1), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
                elif "method" in message:
                    for listener in list(self.listeners):
                        listener(message)
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(self.closed(f"the {self.name} connection closed"))

    async def send(self, message: Message, timeout: float) -> Message:
        """Send `message` under the next id; the whole answer, however it reads."""
        if self._socket is None:
            raise self.closed(f"{self.name} is not running")
        number = next(self._ids)
        waiter: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[number] = waiter
        await self._socket.send(json.dumps({"id": number, **message}))
        try:
            return await asyncio.wait_for(waiter, timeout)
        finally:
            self._waiting.pop(number, None)

    async def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await end_group(self.process)
        # The browser's helper processes may still write to the profile for a moment.
        for _ in range(50):
            shutil.rmtree(self.profile, ignore_errors=True)
            if not self.profile.exists():
                break
            await asyncio.sleep(0.1)
