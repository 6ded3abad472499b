"""A run that loses its SSH connection after the switch: the `check live` step (before the
switch: which verified release restores the slot, and whether what serves now was ever
verified), the `reconnect` step (bounded retries, the lock taken again) so that the rollback
can finish, and the one line that says what serves when the host cannot be reached again.

A release that `current` points to without `.ok` (or a deploys.log line) is unverified: the
droplet itself keeps that state, so the next deploy (`check live`) says so without any marker
of ours."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from staging_ops import remote
from staging_ops.deploy.releases_sh import Release
from staging_ops.deploy.rollback import newest_good, releases
from staging_ops.errors import Conflict, StagingError

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

# Pauses before each reconnect attempt: sshd restarting or a network blip, not an outage.
PAUSES = (0.5, 2.0, 5.0)
# How long a new lock waits for our old holder (its channel is gone) to let go.
LOCK_WAIT = 5.0


def unverified_note(listing: list[Release], live: str | None) -> str | None:
    """What to say when the release `current` points to never passed verify (or None)."""
    state = next((r for r in listing if r.name == live), None)
    if live is None or state is None or state.ok:
        return None
    marked = "marked bad" if state.bad else "never verified"
    return f"{live} serves but was {marked} (a run that lost its connection?)"


def check_live(deployer: Deployer, new: str, previous: str | None) -> str:
    """The `check live` step, just before the switch: the verified release that restores the
    slot if this run loses the host (never `new`), its name or ""; a warning if what serves
    now was never verified."""
    with deployer.step("check live") as rec:
        listing = releases(deployer)
        target = newest_good(listing, exclude=new, prefer=previous)
        note = unverified_note(listing, previous)
        if note:
            rec.outcome, rec.detail = "warn", note
        else:
            rec.detail = f"{previous or 'nothing'} live, verified"
        return target.name if target else ""


def lost_line(
    slot_id: int,
    identifier: str,
    host: str,
    step: str,
    release: str,
    restore: str,
    tries: int,
    task: str | None,
) -> str:
    """The one line for a run that lost the host after its switch and could not regain it."""
    head = (
        f"{identifier}: connection to {host} lost during {step}, not regained after {tries} "
        f"tries: `current` points to {release}, not verified; "
    )
    if not restore:
        return (
            head
            + f"no verified release to restore; stop it: invoke release --slot {slot_id} --stop"
        )
    claim = f"--task {task}" if task else "--force"
    return head + (
        f"restore the last verified one: invoke rollback --slot {slot_id} --to {restore} {claim}"
    )


def unrecorded_line(
    slot_id: int, identifier: str, host: str, release: str, why: str, task: str | None
) -> str:
    """The line for a run that lost the host during `record`: its release serves and passed
    verify, but the droplet does not say so (no `.ok`, no deploys.log line)."""
    claim = f"--task {task}" if task else "--force"
    return (
        f"{identifier}: connection to {host} lost during record, {why}: `current` points to "
        f"{release}, verified but not recorded on the droplet (verify will call it unverified); "
        f"record it: invoke rollback --slot {slot_id} --to {release} {claim}"
    )


def connection_lost(deployer: Deployer) -> bool:
    """Whether the run's SSH connection is gone: a step whose channel died with it may fail
    as an ordinary command failure (no exit status, no output), not as Unreachable."""
    if deployer.remote is None:
        return True
    transport = deployer.remote.connection.client.get_transport()
    return transport is None or not transport.is_active()


def regain(deployer: Deployer) -> int | None:
    """The `reconnect` step: a new connection and the slot's lock again, with bounded
    retries. None once regained, else the number of tries made."""
    with deployer.step("reconnect") as rec:
        _drop(deployer)
        last = "no answer"
        for n, pause in enumerate(PAUSES, 1):
            time.sleep(pause)
            try:
                deployer.remote = remote.connect(deployer.host)
                deployer.lock = deployer.take_lock(LOCK_WAIT)
                rec.detail = f"regained after {n} {'try' if n == 1 else 'tries'}"
                return None
            except (Conflict, remote.HostKeyRefused) as exc:
                # Someone else deploys now: their run decides what serves, not our rollback.
                # Or the host answers with another key than before: nothing is sent to it, and
                # asking again would not make it the droplet.
                _drop(deployer)
                rec.outcome, rec.detail = "failed", str(exc)
                return n
            except StagingError as exc:
                _drop(deployer)
                last = str(exc)
        rec.outcome, rec.detail = "failed", last
        return len(PAUSES)


def _drop(deployer: Deployer) -> None:
    # The connection is already gone: closing it is best effort.
    with contextlib.suppress(Exception):
        deployer.close()
    deployer.remote = deployer.lock = None
