"""Group commit: the rows of many requests go to the store in one transaction.

A request hands its rows to the writer and awaits the commit of the batch they went into;
only then does the receiver answer 204. Rows gather while the previous batch commits, so the
busier the receiver, the more records each transaction carries.

Where the commit runs depends on the store (`Store.slow_writes`):

- SQLite commits in a few microseconds per row without waiting on anything (WAL, no fsync per
  commit, checkpoints in a thread of their own), so batches are written by a callback on the
  event loop: no thread to wake, no GIL to hand back and forth. Measured here, that is faster
  than a writer thread, whose hand-offs cost the event loop more than the writes themselves.
- PostgreSQL waits on the network, so its batches go to a writer thread and the event loop
  never blocks; the thread gets the whole gathered list in one hand-off per transaction.

On the event loop, SQLite writes only what needs no waiting (`Store.try_add`); a batch that
would wait (a lock held by another process or by a checkpoint) or that fails goes to the
writer thread instead, and the loop goes on answering meanwhile.

Rows waiting for a commit are bounded (`MAX_WAITING_ROWS`): beyond it, 503 at once rather
than memory that grows for as long as the database is away. Closing waits for the writer
thread at most `CLOSE_WAIT` seconds, so that a dead database cannot hang a shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Sequence

from sitebeacon.collect.limits import CLOSE_WAIT, MAX_WAITING_ROWS
from sitebeacon.collect.stores import Store, StoreError
from sitebeacon.collect.types import Row

log = logging.getLogger("sitebeacon.writer")

_Job = tuple[Sequence[Row], "asyncio.Future[None]"]
_STOP = object()

GATHER_TURNS = 4
"""How many event-loop turns a batch may wait for more requests (SQLite, in-loop mode).

Each turn polls the sockets once more, so the requests that arrived meanwhile join the batch;
the batch is committed as soon as a turn brings nothing new, or after this many turns. Under
load that makes batches of about one request per connection instead of about a third of that,
which cuts SQLite's cost per record by a third or more (fewer, larger transactions). An idle
receiver commits one turn later than it would without this: a turn with nothing to do takes
microseconds.
"""


class GroupCommitWriter:
    """All writes to `store` go through here; `submit` is called on the event loop."""

    def __init__(self, store: Store, *, threaded: bool | None = None) -> None:
        self.store = store
        self.threaded = store.slow_writes if threaded is None else threaded
        self._lock = threading.Lock()
        self._pending: list[_Job] = []
        self._busy = False  # a batch is being committed (event-loop state)
        self._scheduled = False
        self._turns = 0  # loop turns the pending batch has waited so far
        self._gathered = 0  # its size at the last turn
        self._closed = False
        self._waiting = 0  # rows submitted whose outcome is not known yet (event-loop state)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self, *, always: bool = False) -> None:
        """Start the writer thread (threaded mode, or `always`); submit starts it if needed."""
        with self._lock:
            if (self.threaded or always) and self._thread is None and not self._closed:
                # A daemon: `close` waits for it, but only so long (a dead database).
                self._thread = threading.Thread(
                    target=self._run, name="sitebeacon-writer", daemon=True
                )
                self._thread.start()

    def submit(self, rows: Sequence[Row]) -> asyncio.Future[None]:
        """Queue `rows`; the future completes once they are committed, or fails (503)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self.threaded and self._thread is None:
            self.start()
        with self._lock:
            if self._closed:
                future.set_exception(StoreError("the receiver is shutting down"))
                return future
            if self._waiting + len(rows) > MAX_WAITING_ROWS:
                future.set_exception(StoreError("too many records waiting for the database"))
                return future
            self._waiting += len(rows)
            self._pending.append((rows, future))
        self._loop = loop
        if not self._busy and not self._scheduled:
            # call_soon, not now: the requests already read in this loop turn join the batch.
            self._scheduled = True
            loop.call_soon(self._dispatch)
        return future

    def flush(self) -> None:
        """Block until everything submitted before this call is committed (another thread)."""
        if self.threaded:
            done = threading.Event()
            with self._lock:
                if self._closed or self._thread is None:
                    return
                self._hand_over()
                self._queue.put(done)
            done.wait()
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            self._commit_left_over()
            return
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is loop:  # called on the loop itself
                self._commit_in_loop()
                return
        finished = threading.Event()

        def flush_now() -> None:
            self._commit_in_loop()
            finished.set()

        try:
            loop.call_soon_threadsafe(flush_now)
        except RuntimeError:  # the loop closed meanwhile
            self._commit_left_over()
            return
        finished.wait()

    def close(self) -> None:
        """Refuse new rows, commit every row already submitted; from any thread, idempotent.

        Runs once the server has stopped (no request in progress), so whatever is still
        pending is committed here, in the calling thread.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._hand_over()
                self._queue.put(_STOP)
        if thread is not None:
            thread.join(CLOSE_WAIT)
            if thread.is_alive():  # stuck on the database: its rows were never answered 204
                log.error("the store did not answer in %s s; stopping without it", CLOSE_WAIT)
                return
        self._commit_left_over()

    # --- event-loop side ---------------------------------------------------------------

    def _take_pending(self) -> list[_Job]:
        with self._lock:
            jobs, self._pending = self._pending, []
        return jobs

    def _hand_over(self) -> None:
        """Move the pending jobs to the writer thread; the caller holds the lock."""
        if self._pending:
            jobs, self._pending = self._pending, []
            self._queue.put(jobs)

    def _dispatch(self) -> None:
        if not self.threaded:
            self._turns += 1
            size = len(self._pending)
            if self._turns < GATHER_TURNS and size > self._gathered:
                self._gathered = size  # requests keep coming: wait one more turn for more
                asyncio.get_running_loop().call_soon(self._dispatch)
                return
            self._turns = self._gathered = 0
        self._scheduled = False
        if self._busy:
            return
        if not self.threaded:
            self._commit_in_loop()
            return
        with self._lock:
            if self._pending:
                self._busy = True
                self._hand_over()

    def _commit_in_loop(self) -> None:
        jobs = self._take_pending()
        if not jobs:
            return
        self._busy = True
        try:
            written = self.store.try_add([row for rows, _ in jobs for row in rows])
        except Exception:  # a row refused, a full disk: the thread sorts it out, job by job
            written = False
        if not written:  # stays busy until the thread hands the outcome back
            self.start(always=True)
            with self._lock:
                self._queue.put(jobs)
            return
        try:
            self._done(jobs, {})
        finally:
            self._busy = False

    def _done(self, jobs: list[_Job], failed: dict[int, StoreError]) -> None:
        """Answer the batch's requests."""
        for index, (rows, future) in enumerate(jobs):
            self._waiting -= len(rows)
            if future.done():  # the request was cancelled (client gone, forced shutdown)
                continue
            error = failed.get(index)
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    def _done_in_thread(self, jobs: list[_Job], failed: dict[int, StoreError]) -> None:
        """The thread's batch is written: answer it, then send on what gathered meanwhile."""
        self._done(jobs, failed)
        self._busy = False
        self._scheduled = True
        self._dispatch()

    # --- writing (the writer thread, the event loop, or close) ---------------------------

    def _write(self, jobs: list[_Job]) -> dict[int, StoreError]:
        """Commit the jobs in one transaction; if that fails, each on its own, so that one
        job the store refuses does not fail the others. Returns the failures by index."""
        try:
            self.store.add([row for rows, _ in jobs for row in rows])
            return {}
        except Exception as error:
            if len(jobs) == 1:
                log.error("store write failed: %s", error)
                return {0: error if isinstance(error, StoreError) else StoreError(str(error))}
        failed: dict[int, StoreError] = {}
        for index, job in enumerate(jobs):
            outcome = self._write([job])
            if outcome:
                failed[index] = outcome[0]
        return failed

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            jobs: list[_Job] = item  # type: ignore[assignment]
            failed = self._write(jobs)
            self._notify(jobs, failed)

    def _commit_left_over(self) -> None:
        jobs = self._take_pending()
        if jobs:
            self._notify(jobs, self._write(jobs))

    def _notify(self, jobs: list[_Job], failed: dict[int, StoreError]) -> None:
        """Hand the outcome to the event loop that owns the futures."""
        loop = jobs[0][1].get_loop()
        # A closed loop raises RuntimeError: nobody is waiting there any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._done_in_thread, jobs, failed)
