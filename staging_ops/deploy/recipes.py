"""deploy and rollback, each a list of steps in the order the operator sees them printed
(one module per step, as Deployer's recipes have one file per task):

    deploy:   claim, connect, lock, fetch, hold claim, export + venv, migrate, switch, restart,
              verify, record
    rollback: claim, connect, lock, choose release, switch, restart, verify, record

A deploy never replaces a working release with a broken one: the new release is exported,
given its venv and migrated (PREPARE) before `current` moves; after the switch (GO_LIVE) it
must answer /api/version with its own commit (on the UI port and through nginx) or the previous
verified release is switched back, verified, and the failed one marked bad (rollback.py). The
switch and restart run detached from our SSH session, so a deploy killed at any moment leaves
the old or the new release serving, never nothing. Ctrl-C and SIGTERM after the switch roll
back like a failure does before the process exits.
"""

from __future__ import annotations

from typing import Any

from staging_ops import output
from staging_ops.deploy import (
    claim,
    fetch,
    hold,
    migrate,
    record,
    release,
    restart,
    switch,
    verify,
)
from staging_ops.deploy.branch import task_from_branch, validate_branch
from staging_ops.deploy.reconnect import check_live, connection_lost, lost_line, regain
from staging_ops.deploy.rollback import CHOOSE_STEP, roll_back
from staging_ops.deploy.session import Deployer, Interrupted, Stop, failed_step, session
from staging_ops.deploy.steps import DeployResult, Run, run_steps
from staging_ops.errors import StagingError
from staging_ops.inventory import Inventory, Slot
from staging_ops.remote import Unreachable
from staging_ops.render import public_url

# Nothing serves from the new release yet: a failure here needs no rollback.
PREPARE = (fetch.STEP, hold.STEP, release.STEP, migrate.STEP)
# From the switch on, a failure (or Ctrl-C, SIGTERM) goes back to a verified release.
GO_LIVE = (switch.STEP, restart.STEP, verify.STEP)


def deploy(
    inventory: Inventory,
    slot: Slot,
    branch: str,
    *,
    registry: Any,
    operator: str,
    task: str | None = None,
    force: bool = False,
    log: output.StepLog | None = None,
) -> DeployResult:
    """Deploy `branch` to `slot`: claim, lock, fetch, export, venv, migrate, switch, restart,
    verify (rolling back on failure, Ctrl-C or SIGTERM), record. Raises on failure with the
    slot's state."""
    log = log or output.StepLog()
    validate_branch(branch)
    result = DeployResult(slot.id, slot.identifier, branch)
    with log.step("claim") as rec:
        task = task or task_from_branch(branch)
        check = claim.check_deploy_claim(registry, slot, task, operator, force)
        rec["detail"] = check.detail
    run = Run(result, check, registry)
    deployer = Deployer(inventory, slot, log, operator)
    with session(deployer, log):
        if deployer.lock and deployer.lock.warning:
            result.warnings.append(deployer.lock.warning)
        _prepare(deployer, log, run)
        _go_live(deployer, log, run)
        run_steps((record.STEP,), deployer, log, run)
    return _done(result, deployer, log)


def rollback(
    inventory: Inventory,
    slot: Slot,
    *,
    registry: Any,
    operator: str,
    to: str | None = None,
    task: str | None = None,
    force: bool = False,
    log: output.StepLog | None = None,
) -> DeployResult:
    """Back to the previous verified-good release (or `to`), verified the same way, and
    recorded. The claim is checked first, with deploy's rules."""
    log = log or output.StepLog()
    with log.step("claim") as rec:
        check = claim.check_rollback_claim(registry, slot, task, operator, force)
        rec["detail"] = check.detail
    result = DeployResult(slot.id, slot.identifier, "")
    run = Run(result, check, registry, to=to)
    deployer = Deployer(inventory, slot, log, operator)
    with session(deployer, log):
        run_steps((CHOOSE_STEP,), deployer, log, run)
        _go_live(deployer, log, run)
        run_steps((record.STEP,), deployer, log, run)
    return _done(result, deployer, log)


def _prepare(deployer: Deployer, log: output.StepLog, run: Run) -> None:
    """The PREPARE steps; a failure or an interruption says nothing was switched."""
    try:
        run_steps(PREPARE, deployer, log, run)
    except (StagingError, Stop) as failure:
        state = "nothing was switched, the previous release keeps serving"
        step = failed_step(log)
        if isinstance(failure, Stop):
            raise Interrupted(
                f"{deployer.slot.identifier}: interrupted during {step}; {state}", failure
            ) from None
        raise type(failure)(
            f"{deployer.slot.identifier}: {step} failed: {failure}; {state}"
        ) from None


def _go_live(deployer: Deployer, log: output.StepLog, run: Run) -> None:
    """The GO_LIVE steps: make the release current and prove it serves its commit; on a
    failure, Ctrl-C or SIGTERM from the switch on, back to what served before if it is
    verified-good, else the newest verified-good release (rollback.roll_back). A connection
    lost after the switch is regained first (reconnect.py), or the one line says what serves."""
    restore = check_live(deployer, log, run.result.release, run.previous)
    try:
        run_steps(GO_LIVE, deployer, log, run)
    except Stop as stop:
        roll_back(deployer, log, run.result.release, stop, run.previous)
    except StagingError as failure:
        step = failed_step(log)
        if step == "switch":
            raise  # `current` did not move: what served before still serves
        if isinstance(failure, Unreachable) or connection_lost(deployer):
            _regain_or_say(deployer, log, run, step, restore)
            roll_back(deployer, log, run.result.release, failure, run.previous, step=step)
        roll_back(deployer, log, run.result.release, failure, run.previous)


def _regain_or_say(
    deployer: Deployer, log: output.StepLog, run: Run, step: str, restore: str
) -> None:
    """The connection was lost during `step`: regained (reconnect.py), or the one line that
    says what `current` points to and how to restore the last verified release."""
    tries = regain(deployer, log)
    if tries is None:
        return
    slot = deployer.slot
    raise StagingError(
        lost_line(
            slot.id,
            slot.identifier,
            deployer.host.name,
            step,
            run.result.release,
            restore,
            tries,
            run.claim.task,
        )
    ) from None


def _done(result: DeployResult, deployer: Deployer, log: output.StepLog) -> DeployResult:
    result.url = public_url(deployer.host, deployer.slot)
    result.steps = log.steps
    return result
