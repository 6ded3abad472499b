"""The `record` step: the release marked verified (`.ok`), a line in the slot's deploy log,
old releases pruned (remote script deploy-releases.sh `record`), and the deploy told to the
registry."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from staging_ops import remote
from staging_ops.deploy.steps import Run, Step
from staging_ops.errors import Conflict

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

KEEP_RELEASES = 5


def finish(
    deployer: Deployer, release: str, branch: str, commit: str, previous: str | None
) -> None:
    """Mark `release` verified-good (`.ok`), append to the slot's deploy log and keep the
    newest releases: never the current, the previous, or the one rollback would pick (the
    newest verified-good one older than `release`). One command: verify already passed."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    command = remote.script_command(
        "deploy-releases.sh",
        "record",
        deployer.paths.releases,
        f"{deployer.paths.root}/deploys.log",
        f"{stamp} {deployer.operator} {branch} {commit} {release}",
        release,
        previous or "",
        KEEP_RELEASES,
    )
    # Guarded: a deploy whose lock was taken over must not mark or prune releases.
    deployer.run(command, check=False, guarded=True)


def _step(deployer: Deployer, run: Run) -> str:
    result = run.result
    finish(deployer, result.release, result.branch, result.commit, run.previous)
    tell = partial(
        run.registry.record_deploy,
        deployer.slot.id,
        result.branch,
        result.commit,
        deployer.operator,
    )
    if not run.claim.record:
        tell(serving=True)  # a forced run on a free slot: what serves, the slot left free
        return "registry (what serves) + deploy log"
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
    return "registry + deploy log"


STEP = Step("record", _step)
