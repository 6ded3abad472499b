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
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import shlex
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import paramiko

from staging_ops import remote as remote_mod
from staging_ops.errors import Conflict, StagingError

BUSY = 73
# The exit code and stderr marker of a guarded command whose holder lost the lock.
LOST = 74
LOST_MARK = "DEPLOY-LOCK-LOST:"
# The fd the fence flock is held on: deploy.py's scripts use 7 and 8 for their own flocks.
FENCE_FD = 6
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
        self, remote: remote_mod.RemoteHost, command: str, check: bool = True
    ) -> tuple[int, str, str]:
        """remote.run(guard(command)); raises LockLost (naming the new holder) if the lock
        was taken over, else behaves like remote.run."""
        code, out, err = remote.run(self.guard(command), check=False)
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
    return path + ".holder"


def describe(note: dict[str, object]) -> str:
    return f"{note.get('holder', '?')} on {note.get('host', '?')} (pid {note.get('pid', '?')})"


def fence_check(path: str, token: str) -> str:
    """Shell to prefix to a command: takes the fence (flock on the holder file, on fd 6) and
    exits LOST, naming the holder, unless the holder file still starts with `token`. The fence
    is held until the shell exits; use `guarded`, which keeps fd 6 from the command's children
    (a service started with it would hold the fence for ever)."""
    holder = remote_mod.quote(holder_path(path))
    return (
        f"exec {FENCE_FD}>>{holder} && flock -w {FENCE_WAIT} {FENCE_FD} || exit 1\n"
        f"_lock_t=; _lock_d=; read -r _lock_t _lock_d < {holder}\n"
        f'if [ "$_lock_t" != {shlex.quote(token)} ]; then '
        f'echo {shlex.quote(LOST_MARK)} "$_lock_d" >&2; exit {LOST}; fi\n'
    )


def guarded(path: str, token: str, command: str) -> str:
    """`command` behind fence_check, in a group that does not pass the fence fd on."""
    return f"{fence_check(path, token)}{{ {command}\n}} {FENCE_FD}>&-"


def lock_script(path: str, note: dict[str, object], token: str | None = None) -> str:
    """The remote shell that takes the lock, writes the note and holds it until EOF.

    It runs under `setsid`, so the holding shell leads its own process group whether it was
    started by sshd (as root) or by sudo (where it is not a group leader): a takeover kills
    that group, the shell and its `cat`, which both hold the lock's fd."""
    lock, meta = remote_mod.quote(path), remote_mod.quote(path + ".json")
    holder = remote_mod.quote(holder_path(path))
    token = token or secrets.token_hex(16)
    fenced = f"{token} {describe(note)} at {note.get('started', '?')}"
    # The note plus the holding shell's pid ($$), so a later deploy can end a hung holder.
    prefix = remote_mod.quote(json.dumps(note)[:-1] + ', "remote_pid": ')
    inner = (
        f"exec 9>>{lock} || exit 1\n"
        f"if ! flock -n 9; then echo BUSY; cat {meta} 2>/dev/null; echo; exit {BUSY}; fi\n"
        # Under the fence: never between a guarded command's check and its step.
        f"exec {FENCE_FD}>>{holder} && flock -w {FENCE_WAIT} {FENCE_FD} || exit 1\n"
        f"printf '%s\\n' {shlex.quote(fenced)} > {holder}\n"
        f"exec {FENCE_FD}>&-\n"
        f"printf '%s%s}}' {prefix} $$ > {meta}\n"
        "echo LOCKED\n"
        "cat >/dev/null\n"
        f"rm -f {meta}\n"
    )
    return f"exec setsid -w sh -c {shlex.quote(inner)}"


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
            # The holder's whole process group (it leads one, see lock_script): its `cat`
            # child holds the lock's fd too.
            pid = int(held["remote_pid"])
            remote.run(f"kill -- -{pid} 2>/dev/null || kill {pid}; sleep 0.2", check=False)
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
