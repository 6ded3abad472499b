"""Processes and cgroups, identified by what we recorded, never by name."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from devtools.cgroups import dirs as cgroup_dirs
from devtools.cgroups import kill as kill_cgroup
from devtools.cgroups import pids as cgroup_pids
from devtools.cgroups import remove as remove_cgroups

# systemd-nspawn wants the droplet in both of a hybrid host's trees.
CGROUP_ROOTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))
__all__ = [
    "CGROUP_ROOTS",
    "alive",
    "cgroup_dirs",
    "cgroup_pids",
    "children",
    "command_line",
    "kill_cgroup",
    "pid_namespace",
    "remove_cgroups",
    "stop_pid",
]


def command_line(pid: int) -> str:
    """/proc/PID/cmdline with its NUL separators kept ('' when the process is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[-1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def pid_namespace(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


def stop_pid(
    pid: int,
    ours: Callable[[int], bool],
    sig: signal.Signals = signal.SIGTERM,
    timeout: float = 5.0,
) -> bool:
    """Signal `pid` if it runs and `ours(pid)` says it is ours; SIGKILL after `timeout`.
    True when it was running (and ours)."""
    if not alive(pid) or not ours(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive(pid) and ours(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True
