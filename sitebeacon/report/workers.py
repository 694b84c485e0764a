"""What the receiver's helper processes (the dashboard's report worker, the summary keeper) do
first."""

from __future__ import annotations

import signal


def ignore_interrupts() -> None:
    """Ignore SIGINT in a helper process.

    Ctrl-C in a terminal reaches the whole process group. The receiver shuts its helpers down
    itself; without this, each would also die of the KeyboardInterrupt with a traceback of its
    own on the user's terminal.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
