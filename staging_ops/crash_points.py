"""Crash points for the tests that prove a run killed at any step leaves a working droplet.

`STAGING_OPS_CRASH_AT=<point>` makes the process SIGKILL itself when it reaches that point:
a real `kill -9` at an exact step, with no cleanup code run (no finally, no atexit).
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "STAGING_OPS_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def crash_soon(name: str, after: float = 0.15) -> None:
    """Under the crash point `name`, die `after` seconds from now, while the remote command
    that follows is under way, as a Ctrl-\\ or kill -9 would."""
    if os.environ.get(ENV) == name:
        threading.Timer(after, crash_point, args=(name,)).start()
