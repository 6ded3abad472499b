"""Processes and cgroups, identified by what we recorded, never by name."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

CGROUP_ROOTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))


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


def cgroup_dirs(name: str) -> list[Path]:
    """The droplet's cgroup directories in every hierarchy, deepest first (nspawn leaves
    payload/ and supervisor/ below ours)."""
    found: list[Path] = []
    for root in CGROUP_ROOTS:
        top = root / name
        if top.is_dir():
            found += [Path(d) for d, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def cgroup_pids(name: str) -> list[int]:
    pids: set[int] = set()
    for d in cgroup_dirs(name):
        with contextlib.suppress(OSError):
            pids.update(int(p) for p in (d / "cgroup.procs").read_text().split())
    return sorted(pids)


def kill_cgroup(name: str, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process in the droplet's own cgroups (after a crash the container's init
    outlives nspawn; membership of our uniquely named cgroup is what makes them ours)."""
    killed = cgroup_pids(name)
    deadline = time.monotonic() + timeout
    while True:
        pids = cgroup_pids(name)
        if not pids or time.monotonic() > deadline:
            return killed
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def remove_cgroups(name: str) -> list[Path]:
    """rmdir the droplet's cgroup dirs depth-first; returns those that would not go."""
    left = []
    for d in cgroup_dirs(name):
        try:
            d.rmdir()
        except OSError:
            left.append(d)
    return left
