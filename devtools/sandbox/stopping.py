"""Stopping the sandbox's processes: ask each to stop, wait until it is gone, SIGKILL what is
left, and wait for that too, so that `down` returning means nothing of the sandbox still runs
(or holds a port).

"Gone" means exited (or a zombie: its files and sockets are released). A process's own
command line and environment vanish while it exits, so once a process was found to be ours
and signalled, `running` is what is waited on; whether a process is ours (the caller's
`Target.processes`) is decided again before each signal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

STOP_TIMEOUT = 3.0  # seconds a process gets to stop before SIGKILL
KILL_WAIT = 2.0  # seconds a SIGKILLed process gets to be gone
POLL = 0.02


@dataclass(frozen=True)
class Target:
    """One thing to stop. `processes` returns those of its processes that run now and are
    ours (the sandbox's): called once before the stop signal and again before SIGKILL."""

    name: str
    processes: Callable[[], list[int]]
    signal: signal.Signals = signal.SIGTERM
    timeout: float = STOP_TIMEOUT


def stop(targets: Iterable[Target]) -> list[str]:
    """Stop every target; returns the names of those that had a process to stop."""
    targets = list(targets)
    asked = {t.name: t.processes() for t in targets}
    for t in targets:
        for pid in asked[t.name]:
            _signal(pid, t.signal)
    start = time.monotonic()
    for t in targets:
        wait_gone(asked[t.name], start + t.timeout)
    killed = []
    for t in targets:
        if asked[t.name]:
            for pid in t.processes():
                _signal(pid, signal.SIGKILL)
                killed.append(pid)
    # Also those no longer ours because they are exiting (their command line is gone).
    everyone = [pid for pids in asked.values() for pid in pids] + killed
    wait_gone(everyone, time.monotonic() + KILL_WAIT)
    return [t.name for t in targets if asked[t.name]]


def wait_gone(pids: Iterable[int], deadline: float) -> bool:
    """Wait until none of `pids` runs, or `deadline` (time.monotonic()) passes; True if none
    does."""
    left = list(pids)
    while True:
        left = [pid for pid in left if running(pid)]
        if not left or time.monotonic() >= deadline:
            return not left
        time.sleep(POLL)


def running(pid: int) -> bool:
    """`pid` exists and has not exited. Not just its first thread: that one shows as a zombie
    as soon as it has exited itself, while the process's other threads may still run and hold
    its files and sockets (granian's workers have several)."""
    try:
        tasks = [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return False
    return any(_live(_stat_fields(pid, task)) for task in tasks)


def process_group(pgid: int) -> list[int]:
    """Every process in process group `pgid` that has not exited. A process started with
    start_new_session=True leads a group of its own, which its children (granian's workers)
    stay in; the group, and so its number, outlives the leader while any of them runs (Linux
    does not hand out a PID still in use as a group's), so this finds workers orphaned by a
    leader that died."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        pid = int(stat.parent.name)
        fields = _stat_fields(pid)
        if fields is not None and fields[2] == str(pgid) and running(pid):
            found.append(pid)
    return found


def descendants(pid: int) -> list[int]:
    """Every running process below `pid` (children, theirs, …), from one read of /proc: a
    unit's process tree (bin/run-process's shell, the app, gunicorn's or Airflow's workers)."""
    children: dict[str, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        child = int(stat.parent.name)
        fields = _stat_fields(child)
        if fields is not None:
            children.setdefault(fields[1], []).append(child)
    found: list[int] = []
    todo = [pid]
    while todo:
        below = children.get(str(todo.pop()), [])
        found += below
        todo += below
    return [p for p in found if running(p)]


def _stat_fields(pid: int, task: int | None = None) -> list[str] | None:
    """/proc/PID/stat (or a thread's, /proc/PID/task/TASK/stat) after the command name:
    state, ppid, pgrp, ... (None: no such process)."""
    path = f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat"
    try:
        stat = Path(path).read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()


def _live(fields: list[str] | None) -> bool:
    return fields is not None and fields[0] not in ("Z", "X")


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
