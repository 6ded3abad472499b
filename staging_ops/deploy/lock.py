"""The per-slot deploy lock, held on the droplet for exactly as long as the deploy lives.

A remote shell takes `flock` on `<slot>/.deploy.lock` and then waits on its stdin, which is
our SSH channel. When the deploy ends, fails, is interrupted or is killed with -9, the channel
closes, the shell exits and the kernel drops the lock: there is no stale lock to clean up. A
lock whose deploy hangs for longer than the deploy timeout is taken over (its holder killed)
with a warning. `<slot>/.deploy.lock.json` says who holds it and since when.

A takeover kills only the holding shell, not the deploy that took it, which may still be
running (it was slow, not dead). So each holder gets a fencing token: the lock script writes
it to `<slot>/.deploy.lock.holder`, and the steps that change what the slot serves run as
`SlotLock.guard(command)`, which checks in the same remote command that the token is still
ours. That check and the command run under a flock on the holder file, and a new holder
writes its token under that flock too, so no takeover lands between the check and the step.

The remote shell is remote/scripts/lock-hold.sh and lock-guard.sh (lock-kill.sh ends a hung
holder); this module is the three scripts' home (their builders, by the names of their usage
headers); their flocks' file descriptors are named in fds.py.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import paramiko

from staging_ops import remote as remote_mod
from staging_ops.errors import Conflict, StagingError
from staging_ops.remote.scripts import argv_of, home, script_command

BUSY = 73
# The exit code and stderr marker of a guarded command whose holder lost the lock.
LOST = 74
LOST_MARK = "DEPLOY-LOCK-LOST:"
# The fence is held for one guarded command (a restart at most): waiting longer means
# something kept it, and a clear failure beats a deploy that hangs.
FENCE_WAIT = 300


def hung_after(verify_timeout: float) -> float:
    """Seconds after which a holder counts as hung and may be taken over: longer than any
    deploy step should take (a venv build, a verify), however short verify's timeout."""
    return max(600.0, verify_timeout * 4)


class LockLost(StagingError):
    """The lock was taken over while we still ran: the step was not done. Exit 1."""


@dataclass
class SlotLock:
    channel: paramiko.Channel
    path: str
    warning: str | None = None
    token: str = ""
    slot_name: str = ""
    action: str = "deploy"

    def guard(self, command: str) -> str:
        """`command`, run only while this lock's token is still the slot's holder."""
        return guarded(self.path, self.token, command)

    def run(
        self,
        remote: remote_mod.RemoteHost,
        command: str,
        check: bool = True,
        on_line: Callable[[str], None] | None = None,
    ) -> tuple[int, str, str]:
        """remote.run(guard(command)); raises LockLost (naming the new holder) if the lock
        was taken over, else behaves like remote.run."""
        code, out, err = remote.run(self.guard(command), check=False, on_line=on_line)
        self.raise_if_lost(code, err)
        if check and code != 0:
            detail = " | ".join((err or out).strip().splitlines()[-3:]) or command[:80]
            raise StagingError(f"{remote.host.name}: command failed (exit {code}): {detail}")
        return code, out, err

    def raise_if_lost(self, code: int, err: str) -> None:
        if code != LOST or LOST_MARK not in err:
            return
        # The holder file's line after the token: "<who> at <when it took the lock>".
        lines = err.split(LOST_MARK, 1)[1].strip().splitlines()
        holder = lines[0] if lines else "another holder"
        raise LockLost(
            f"{self.slot_name or self.path}: the slot's lock was taken over by {holder}; "
            f"this {self.action} stops"
        )

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


def holder_path(path: str) -> str:
    """The fencing file beside the lock: the holder's token, who and since when."""
    return path + ".holder"


def note_path(path: str) -> str:
    """The JSON note beside the lock: who holds it, since when, the holding shell's pid."""
    return path + ".json"


def describe(note: dict[str, object]) -> str:
    return f"{note.get('holder', '?')} on {note.get('host', '?')} (pid {note.get('pid', '?')})"


@home("lock-guard.sh")
def guard_command(
    holder: str, token: str, fence_wait: int, lost: int, lost_mark: str, program: str, *args: str
) -> str:
    """PROGRAM ARG... run (under the fence) only while `holder`'s first word is `token`."""
    return script_command(
        "lock-guard.sh", holder, token, fence_wait, lost, lost_mark, "--", program, *args
    )


@home("lock-hold.sh")
def hold_command(
    lock: str, note: str, holder: str, fenced: str, note_prefix: str, busy: int, fence_wait: int
) -> str:
    """Take the lock at `lock` and hold it until stdin ends (see lock_script)."""
    return script_command("lock-hold.sh", lock, note, holder, fenced, note_prefix, busy, fence_wait)


@home("lock-kill.sh")
def kill_command(pid: int) -> str:
    """End the hung holder `pid` and its process group."""
    return script_command("lock-kill.sh", pid)


def guarded(path: str, token: str, command: str) -> str:
    """`command`, run (by lock-guard.sh, under the fence) only while the holder file of the
    lock at `path` still starts with `token`; else exit LOST, naming the holder on stderr.
    A script's command is handed over as its words (argv_of), a line of shell as `sh -c`."""
    return guard_command(holder_path(path), token, FENCE_WAIT, LOST, LOST_MARK, *argv_of(command))


def lock_script(path: str, note: dict[str, object], token: str | None = None) -> str:
    """The remote command that takes the lock, writes the note and holds it until EOF
    (lock-hold.sh).

    It runs under `setsid`, so the holding shell leads its own process group whether it was
    started by sshd (as root) or by sudo (where it is not a group leader): a takeover kills
    that group, the shell and its `cat`, which both hold the lock's fd."""
    token = token or secrets.token_hex(16)
    fenced = f"{token} {describe(note)} at {note.get('started', '?')}"
    # The note plus the holding shell's pid ($$), so a later deploy can end a hung holder.
    prefix = json.dumps(note)[:-1] + ', "remote_pid": '
    hold = hold_command(path, note_path(path), holder_path(path), fenced, prefix, BUSY, FENCE_WAIT)
    return f"exec setsid -w {hold}"


def acquire(
    remote: remote_mod.RemoteHost,
    path: str,
    slot_name: str,
    timeout: float,
    operator: str,
    action: str = "deploy",
) -> SlotLock:
    """Take the lock or raise Conflict naming the holder and since when (within ~1 s)."""
    warning = None
    for attempt in range(2):
        note = holder_note(operator)
        token = secrets.token_hex(16)
        channel = remote.connection.client.get_transport().open_session()
        remote.commands += 1
        channel.exec_command(remote.as_root(lock_script(path, note, token)))
        reader = channel.makefile("r")
        first = reader.readline().strip()
        if first == "LOCKED":
            return SlotLock(channel, path, warning, token, slot_name, action)
        rest = reader.read().strip() if first == "BUSY" else ""
        channel.close()
        if first != "BUSY":
            raise StagingError(f"{slot_name}: cannot take the deploy lock at {path}")
        held = _parse(rest)
        since = held.get("started", "an unknown time")
        who = describe(held)
        age = _age(since)
        if attempt == 0 and age is not None and age > timeout and held.get("remote_pid"):
            pid = int(held["remote_pid"])
            remote.run(kill_command(pid), check=False)
            warning = f"took over the deploy lock of {who}, held since {since} (> {timeout:.0f}s)"
            continue
        raise Conflict(
            f"{slot_name}: a deploy is already running: lock held by {who} since {since}"
        )
    raise Conflict(f"{slot_name}: the deploy lock at {path} could not be taken over")


def acquire_waiting(
    remote: remote_mod.RemoteHost,
    path: str,
    slot_name: str,
    timeout: float,
    operator: str,
    wait: float,
    action: str = "deploy",
) -> SlotLock:
    """acquire, retried for up to `wait` seconds while another holder has the lock."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return acquire(remote, path, slot_name, timeout, operator, action)
        except Conflict:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


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
