"""Crash points for the tests that prove a run killed at any step leaves a working droplet.

`STAGING_OPS_CRASH_AT=<point>` makes the process SIGKILL itself when it reaches that point:
a real `kill -9` at an exact step, with no cleanup code run (no finally, no atexit).
`STAGING_OPS_CUT_AT=<point>` cuts the run's SSH connection there instead (its TCP socket shut
down under it, as a dropped network would), the first time the point is reached.
"""

from __future__ import annotations

import os
import signal
import socket
import threading

ENV = "STAGING_OPS_CRASH_AT"
CUT_ENV = "STAGING_OPS_CUT_AT"
_cut: set[str] = set()


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def cut_point(name: str, sock: socket.socket | None) -> None:
    """Under STAGING_OPS_CUT_AT=`name`, shut `sock` (an SSH connection's) down, once."""
    if os.environ.get(CUT_ENV) == name and name not in _cut and sock is not None:
        _cut.add(name)
        sock.shutdown(socket.SHUT_RDWR)


def crash_soon(name: str, after: float = 0.15) -> None:
    """Under the crash point `name`, die `after` seconds from now, while the remote command
    that follows is under way, as a Ctrl-\\ or kill -9 would."""
    if os.environ.get(ENV) == name:
        threading.Timer(after, crash_point, args=(name,)).start()
