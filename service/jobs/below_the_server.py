"""What the server's background processes (the picture process, the screening worker) do
first: step below the server's CPU priority, and leave stopping to the server."""
from __future__ import annotations

import os
import signal

# Added to the process's nice value: it runs when the streams leave a core free.
NICENESS = 10


def settle_below_the_server() -> None:
    """Niced below the server. A terminal's Ctrl-C, or a service manager's stop, signals the
    server's whole process group: the server then ends this process (its pool, or its
    input); the signal itself would stop it in the middle of a wait, with a traceback in the
    server's log, so it is ignored here."""
    os.nice(NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
