"""The per-slot deploy lock, held on the droplet for exactly as long as the deploy lives.

A remote shell takes `flock` on `<slot>/.deploy.lock` and then waits on its stdin, which is
our SSH channel. When the deploy ends, fails, is interrupted or is killed with -9, the channel
closes, the shell exits and the kernel drops the lock: there is no stale lock to clean up. A
lock whose deploy hangs for longer than the deploy timeout is taken over (its holder killed)
with a warning. `<slot>/.deploy.lock.json` says who holds it and since when.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import paramiko

from staging_ops import remote as remote_mod
from staging_ops.errors import Conflict, StagingError

BUSY = 73


@dataclass
class SlotLock:
    channel: paramiko.Channel
    path: str
    warning: str | None = None

    def release(self) -> None:
        try:
            self.channel.shutdown_write()  # EOF: the remote shell removes the note and exits
            deadline = time.monotonic() + 2
            while not self.channel.exit_status_ready() and time.monotonic() < deadline:
                time.sleep(0.01)
        except (OSError, paramiko.SSHException):
            pass
        finally:
            self.channel.close()


def holder_note(operator: str | None = None) -> dict[str, object]:
    return {
        "holder": operator or getpass.getuser(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def lock_script(path: str, note: dict[str, object]) -> str:
    """The remote shell that takes the lock, writes the note and holds it until EOF."""
    lock, meta = remote_mod.quote(path), remote_mod.quote(path + ".json")
    # The note plus the holding shell's pid ($$), so a later deploy can end a hung holder.
    prefix = remote_mod.quote(json.dumps(note)[:-1] + ', "remote_pid": ')
    return (
        f"exec 9>>{lock} || exit 1\n"
        f"if ! flock -n 9; then echo BUSY; cat {meta} 2>/dev/null; echo; exit {BUSY}; fi\n"
        f"printf '%s%s}}' {prefix} $$ > {meta}\n"
        "echo LOCKED\n"
        "cat >/dev/null\n"
        f"rm -f {meta}\n"
    )


def acquire(
    remote: remote_mod.RemoteHost, path: str, slot_name: str, timeout: float, operator: str
) -> SlotLock:
    """Take the lock or raise Conflict naming the holder and since when (within ~1 s)."""
    warning = None
    for attempt in range(2):
        note = holder_note(operator)
        channel = remote.connection.client.get_transport().open_session()
        remote.commands += 1
        channel.exec_command(remote.as_root(lock_script(path, note)))
        reader = channel.makefile("r")
        first = reader.readline().strip()
        if first == "LOCKED":
            return SlotLock(channel, path, warning)
        rest = reader.read().strip() if first == "BUSY" else ""
        channel.close()
        if first != "BUSY":
            raise StagingError(f"{slot_name}: cannot take the deploy lock at {path}")
        held = _parse(rest)
        since = held.get("started", "an unknown time")
        who = f"{held.get('holder', '?')} on {held.get('host', '?')} (pid {held.get('pid', '?')})"
        age = _age(since)
        if attempt == 0 and age is not None and age > timeout and held.get("remote_pid"):
            # The holder's whole process group: its `cat` child holds the lock's fd too.
            pid = int(held["remote_pid"])
            remote.run(f"kill -- -{pid} 2>/dev/null || kill {pid}; sleep 0.2", check=False)
            warning = f"took over the deploy lock of {who}, held since {since} (> {timeout:.0f}s)"
            continue
        raise Conflict(
            f"{slot_name}: a deploy is already running: lock held by {who} since {since}"
        )
    raise Conflict(f"{slot_name}: the deploy lock at {path} could not be taken over")


def _parse(text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _age(started: object) -> float | None:
    try:
        moment = datetime.fromisoformat(str(started))
    except ValueError:
        return None
    return (datetime.now(UTC) - moment).total_seconds()
