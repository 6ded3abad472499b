"""The sandbox's `systemctl` and `journalctl`: docker-systemctl-replacement, with a few changes.

The stand-in keeps one log file per unit *file*, so every instance of a template unit would
share it (slot 3's lines mixed into slot 4's logs). Here each instance gets its own log, as
journald gives each its own `-u`. Its waits also tick in whole seconds (a stop costs 2 s);
here they poll finely, so a sandbox restart takes as long as the service needs.
Run as `python -m devtools.sandbox.systemctl --root=DIR ARGS` (systemctl), or with
`--journalctl` first (journalctl -u UNIT [-n N] [-f]).
"""

from __future__ import annotations

import os
import sys

if sys.flags.no_site:
    # Run with -S (the sandbox's wrapper): site would load every .pth of the venv (the
    # editable install's import hook among them), ~15 ms of each of the many calls a deploy
    # makes. The one package the stand-in needs is in the venv it runs from.
    sys.path.append(
        os.path.join(
            os.path.dirname(os.path.dirname(sys.executable)),
            "lib",
            f"python{sys.version_info.major}.{sys.version_info.minor}",
            "site-packages",
        )
    )

import argparse
import time
from typing import TextIO

from systemctl2 import systemctl3


def _instance_log(self: systemctl3.SystemctlJournal, conf: systemctl3.SystemctlConf) -> str:
    folder = systemctl3.expand_path(self._log_folder, conf.root_mode())
    name = (conf.name() or "default.unit").replace(os.path.sep, ".")
    return os.path.join(folder, name + ".log")


def _open_log(self: systemctl3.SystemctlJournal, conf: systemctl3.SystemctlConf) -> TextIO:
    # The stand-in checks for the log folder, then creates it: two units started at once on a
    # fresh sandbox race there (FileExistsError). Creating it idempotently cannot.
    log_file = self.get_log_from(conf)
    os.makedirs(os.path.dirname(log_file), exist_ok=True)
    return open(log_file, "a")  # the caller owns and closes it


def _wait_vanished_pid(self: systemctl3.Systemctl, pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while self.is_active_pid(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _descendants(self: systemctl3.Systemctl, pid: int | None) -> list[int]:
    """`pid` and every process below it. The stand-in reads all of /proc once per depth it
    allows (100 times, ~0.5 s a stop on a busy machine); one read of each PPid gives the same
    tree."""
    if not pid:
        return []
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                # `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:  # gone meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [pid], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


class _FinePolling:
    """`time` for the stand-in: its whole-second polling sleeps (`sleep(1)` while waiting for
    a process to go) last 20 ms instead; every deadline it keeps is measured, not counted."""

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / 50 if seconds >= 1 else seconds)

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


def _journalctl_args(argv: list[str]) -> list[str]:
    parser = argparse.ArgumentParser(prog="journalctl")
    parser.add_argument("-u", "--unit", required=True)
    parser.add_argument("-n", "--lines", type=int)
    parser.add_argument("-f", "--follow", action="store_true")
    parser.add_argument("--no-pager", action="store_true")
    parser.add_argument("--root", required=True)
    args, _ = parser.parse_known_args(argv)
    out = [f"--root={args.root}", "log", args.unit, "--no-pager"]
    if args.lines:
        out += ["-n", str(args.lines)]
    if args.follow:
        out.append("-f")
    return out


def main() -> int:
    systemctl3.SystemctlJournal.get_log = _instance_log  # type: ignore[method-assign]
    systemctl3.SystemctlJournal.open_log = _open_log  # type: ignore[method-assign]
    systemctl3.Systemctl.wait_vanished_pid = _wait_vanished_pid  # type: ignore[method-assign]
    systemctl3.Systemctl.pidlist_of = _descendants  # type: ignore[method-assign]
    # Every start and stop first waits for the init system to have booted: the sandbox has
    # none, so each paid a 50 ms sleep to learn it.
    systemctl3.Systemctl.wait_system = lambda self, target=None: None  # type: ignore[method-assign]
    # After forking a service the stand-in waits this long to see whether it died at once.
    systemctl3.MinimumYield = 0.02
    systemctl3.time = _FinePolling()  # type: ignore[assignment]
    # Its lock wait counts attempts of one (now 20 ms) sleep each: keep the same total.
    systemctl3.MaxLockWait = 50 * systemctl3.DefaultMaximumTimeout
    argv = sys.argv[1:]
    if argv[:1] == ["--journalctl"]:
        argv = _journalctl_args(argv[1:])
    sys.argv = ["systemctl", *argv]
    return systemctl3.main()


if __name__ == "__main__":
    sys.exit(main())
