"""cgroups of our own, named by us: every process started in one, and every process those
start, is a member whatever it calls itself later (gunicorn's setproctitle rewrites its
command line and environment) and wherever it is reparented to (a daemon's double fork leaves
its starter's process tree). Membership is what makes a process ours; PIDs are not reused into
a cgroup (a new process starts in its parent's).

Making and joining one needs write access to a hierarchy: root, on this machine's hybrid
layout (cgroup2 at /sys/fs/cgroup/unified and v1's named `systemd` tree) or on a cgroup2-only
one (/sys/fs/cgroup). The droplet joins both hybrid trees (systemd-nspawn wants them); the
sandbox one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

ROOTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))
# sh: write its own PID into each cgroup.procs named before `--`, then exec the command, which
# keeps the PID and the membership. The files and the command are arguments, never script text.
_JOIN = (
    'pid=$$; while [ "$1" != -- ]; do echo "$pid" > "$1" || exit 125; shift; done; shift; exec "$@"'
)


def hierarchies() -> list[Path]:
    """The cgroup hierarchies mounted here that we may write (none unless root)."""
    return [r for r in ROOTS if (r / "cgroup.procs").is_file() and os.access(r, os.W_OK)]


def create(name: str) -> Path | None:
    """Cgroup `name` in the first hierarchy that lets a process join it (cgroup2 first); None
    when there is none: the caller then tracks its processes by their recorded PIDs alone."""
    found = hierarchies()
    for root in sorted(found, key=lambda r: not (r / "cgroup.controllers").exists()):
        try:
            (root / name).mkdir(exist_ok=True)
        except OSError:
            continue
        joined = subprocess.run(member_command(name, ["true"]), capture_output=True, check=False)
        if joined.returncode == 0:
            return root / name
        remove(name)
    return None


def member_command(name: str, args: list[str]) -> list[str]:
    """`args`, run as a member of every existing top-level cgroup `name` (unchanged when
    there is none)."""
    procs = [str(d / "cgroup.procs") for d in top_dirs(name)]
    return ["sh", "-c", _JOIN, "sh", *procs, "--", *args] if procs else args


def unwrapped(args: list[str]) -> list[str]:
    """The command `member_command` wrapped (`args` itself if it is not wrapped): to name it."""
    if args[:3] == ["sh", "-c", _JOIN] and "--" in args:
        return args[args.index("--") + 1 :]
    return args


def top_dirs(name: str) -> list[Path]:
    return [root / name for root in ROOTS if (root / name / "cgroup.procs").is_file()]


def dirs(name: str) -> list[Path]:
    """Cgroup `name`'s directories in every hierarchy, deepest first (systemd-nspawn leaves
    payload/ and supervisor/ below ours)."""
    found: list[Path] = []
    for top in top_dirs(name):
        found += [Path(d) for d, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def pids(name: str) -> list[int]:
    members: set[int] = set()
    for d in dirs(name):
        with contextlib.suppress(OSError):
            members.update(int(p) for p in (d / "cgroup.procs").read_text().split())
    return sorted(members)


def kill(name: str, timeout: float = 5.0) -> list[int]:
    """SIGKILL every member of cgroup `name` until none is left (or `timeout`); returns those
    killed."""
    killed = pids(name)
    deadline = time.monotonic() + timeout
    while True:
        members = pids(name)
        if not members or time.monotonic() > deadline:
            return killed
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def remove(name: str) -> list[Path]:
    """rmdir cgroup `name`'s directories depth-first; returns those that would not go."""
    left = []
    for d in dirs(name):
        try:
            d.rmdir()
        except OSError:
            left.append(d)
    return left
