"""The `record` step: the release marked verified (`.ok`), a line in the slot's deploy log,
old releases pruned (remote script deploy-releases.sh `record`), and the deploy told to the
registry.

A connection lost during the step is regained with go-live's bounded retries
(reconnect.regain) and the droplet's part run again: the script is idempotent (the same line,
its time included, is not appended twice). If the host stays unreachable, the registry is
still told what serves, and the run ends with the one line that says the release serves,
verified, but is not recorded on the droplet (Unrecorded)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from staging_ops import remote
from staging_ops.deploy import announce, releases_sh
from staging_ops.deploy.reconnect import connection_lost, regain, unrecorded_line
from staging_ops.deploy.steps import Run, Step
from staging_ops.errors import Conflict, StagingError

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

KEEP_RELEASES = 5
# deploy-releases.sh record's exit when the log line or `.ok` could not be written.
UNMARKED = 3


class Unmarked(StagingError):
    """Verified and serving, but the droplet refused the mark (`.ok`, the deploy log's line)
    on a live connection: the release will read as never verified."""


class Unrecorded(StagingError):
    """Verified and serving, told to the registry, but not marked on the droplet: the host
    was lost during `record`. Not a failed deploy for the history (the registry has it)."""


def finish(
    deployer: Deployer,
    release: str,
    branch: str,
    commit: str,
    previous: str | None,
    stamp: str | None = None,
) -> int:
    """Mark `release` verified-good (`.ok`), append to the slot's deploy log and keep the
    newest releases: never the current, the previous, or the one rollback would pick (the
    newest verified-good one older than `release`). One command: verify already passed.
    The script's exit code (a prune that could not remove something is not a failure; a
    mark that could not be written, on a live connection, raises)."""
    stamp = stamp or datetime.now(UTC).isoformat(timespec="seconds")
    command = releases_sh.record_command(
        deployer.paths.releases,
        f"{deployer.paths.root}/deploys.log",
        f"{stamp} {deployer.operator} {branch} {commit} {release}",
        release,
        previous or "",
        KEEP_RELEASES,
    )
    # Guarded: a deploy whose lock was taken over must not mark or prune releases.
    code, _, err = deployer.run(command, check=False, guarded=True)
    if code == UNMARKED and not connection_lost(deployer):
        raise Unmarked(
            f"{deployer.slot.identifier}: {release} serves, verified, but could not be marked "
            f"so on the droplet ({err.strip().splitlines()[-1] if err.strip() else 'exit 3'}): "
            "it will read as never verified"
        )
    return code


def mark(deployer: Deployer, run: Run) -> str | None:
    """finish(), once more after a lost connection is regained (the same line: idempotent).
    None once done, else why the droplet could not be marked."""
    result = run.result
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    again = partial(
        finish, deployer, result.release, result.branch, result.commit, run.previous, stamp
    )
    if _done(deployer, again):
        return None
    tries = regain(deployer)
    if tries is not None:
        return f"not regained after {tries} {'try' if tries == 1 else 'tries'}"
    return None if _done(deployer, again) else "lost again once regained"


def _done(deployer: Deployer, attempt: Callable[[], int]) -> bool:
    """Whether `attempt` ran to its end: a command that failed on a live connection counts
    (as before: a prune's failure is not the deploy's); one the lost connection cut does not."""
    try:
        return attempt() == 0 or not connection_lost(deployer)
    except remote.Unreachable:
        return False


def _step(deployer: Deployer, run: Run) -> str:
    result = run.result
    unmarked = None
    try:
        lost = mark(deployer, run)
    except Unmarked as exc:  # the registry is still told what serves, then the step fails
        lost, unmarked = None, exc
    tell = partial(
        run.registry.record_deploy,
        deployer.slot.id,
        result.branch,
        result.commit,
        deployer.operator,
    )
    try:
        if not run.claim.record:
            tell(serving=True)  # a forced run on a free slot: what serves, the slot left free
        else:
            _tell_holder(deployer, run, tell)
    except StagingError as exc:
        if lost:  # the droplet's side is missing too: one line says both
            raise type(exc)(f"{_unrecorded(deployer, run, lost)}; {exc}") from None
        raise
    announce.succeeded(deployer, run)
    if lost:
        what = f"{result.branch}@{result.commit[:12]}"
        raise Unrecorded(f"{_unrecorded(deployer, run, lost)}; the registry records {what}")
    if unmarked:
        raise unmarked
    return "registry + deploy log" if run.claim.record else "registry (what serves) + deploy log"


def _tell_holder(deployer: Deployer, run: Run, tell: Callable[..., Any]) -> None:
    result = run.result
    try:
        tell(task=run.claim.task)
    except Conflict:
        # Released (or re-taken by another task) after the fence: the registry must still say
        # what serves, and the operator that the claim is gone.
        state = tell(serving=True)
        now = f"held by {state.holder_text()}" if state.claimed else "free"
        raise Conflict(
            f"{deployer.slot.identifier}: {result.release} serves, verified, but "
            f"{run.claim.task}'s claim was released during this run (the slot is {now}); the "
            f"registry records {result.branch}@{result.commit[:12]} as what serves"
        ) from None


def _unrecorded(deployer: Deployer, run: Run, why: str) -> str:
    slot = deployer.slot
    return unrecorded_line(
        slot.id, slot.identifier, deployer.host.name, run.result.release, why, run.claim.task
    )


STEP = Step("record", _step)
