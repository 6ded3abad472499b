"""deploy and rollback, each a list of steps in the order the operator sees them printed
(one module per step, as Deployer's recipes have one file per task):

    deploy:   claim, connect, lock, fetch, hold claim, export + venv, migrate, memory check,
              candidate start, candidate verify, check live, switch, hand-over, main verify,
              candidate stop + scheduler restart, record
    rollback: claim, connect, lock, choose release, memory check, candidate start, candidate
              verify, check live, switch, hand-over, main verify, candidate stop + scheduler
              restart, record

A broken release never serves a request: the new release is exported, given its venv,
migrated, admitted if the hand-over fits in the droplet's memory (admission.py), and started
and verified as the slot's candidate (PREPARE, candidate.py) before
`current` moves; nginx sends it nothing but what finds the main instance down. A failure up to
there leaves the old release serving and needs no rollback (the candidate is stopped, the
release marked bad). From the switch on (GO_LIVE, golive.py) the main instances restart into
the release while nginx falls through to the candidate, so no request is dropped; a failure,
Ctrl-C or SIGTERM there goes back to the previous verified release the same way (rollback.py).
Restarts run detached from our SSH session, so a deploy killed at any moment leaves the old or
the new release serving, never nothing; the next deploy stops a candidate a killed one left.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from staging_ops import output
from staging_ops.deploy import (
    admission,
    announce,
    candidate,
    claim,
    fetch,
    hold,
    migrate,
    record,
    release,
)
from staging_ops.deploy.failure import record_failure
from staging_ops.deploy.golive import CANDIDATE, GO_LIVE
from staging_ops.deploy.logs import last_lines
from staging_ops.deploy.reconnect import check_live, connection_lost, lost_line, regain
from staging_ops.deploy.release import mark_bad
from staging_ops.deploy.rollback import CHOOSE_STEP, roll_back
from staging_ops.deploy.session import (
    Deployer,
    Interrupted,
    Stop,
    session,
    signals_ignored,
)
from staging_ops.deploy.steps import DeployResult, Run, run_steps
from staging_ops.errors import StagingError
from staging_ops.inventory import Inventory, Slot
from staging_ops.remote import Unreachable
from staging_ops.render import public_url
from staging_ops.slots.branch import task_from_branch, validate_branch
from staging_ops.slots.model import SlotRegistry

# Nothing serves from the new release yet: a failure here needs no rollback.
PREPARE = (fetch.STEP, hold.STEP, release.STEP, migrate.STEP)
# Just before the candidate starts (the latest moment, the truest figures): a hand-over that
# would not fit in memory is refused with nothing started. A step of its own, not part of
# `candidate start`: a refusal has no candidate to stop, no release to mark bad and no unit
# log to show, and its line shows the figures on every deploy.
ADMIT = (admission.STEP,)


def deploy(
    inventory: Inventory,
    slot: Slot,
    branch: str,
    *,
    registry: SlotRegistry,
    operator: str,
    task: str | None = None,
    force: bool = False,
    log: output.StepLog | None = None,
    commit: str | None = None,
) -> DeployResult:
    """Deploy `branch` (its head, or `commit`: a server-side deploy of a push) to `slot`:
    claim, lock, fetch, hold the claim, export, venv, migrate, candidate start and verify,
    switch, hand-over, main verify (rolling back on failure, Ctrl-C or SIGTERM), record.
    Raises on failure with the slot's state."""
    log = log or output.StepLog()
    validate_branch(branch)
    result = DeployResult(slot.id, slot.identifier, branch)
    with log.step("claim") as rec:
        task = task or task_from_branch(branch)
        check = claim.check_deploy_claim(registry, slot, task, operator, force)
        rec.detail = check.detail
    run = Run(result, check, registry, pin=commit)
    deployer = Deployer(inventory, slot, log, operator)
    with session(deployer):
        if deployer.lock and deployer.lock.warning:
            result.warnings.append(deployer.lock.warning)
        with _history(deployer, run):
            _prepare(deployer, run, PREPARE + ADMIT + CANDIDATE)
            _go_live(deployer, run)
            run_steps((record.STEP,), deployer, run)
    return _done(result, deployer)


def rollback(
    inventory: Inventory,
    slot: Slot,
    *,
    registry: SlotRegistry,
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
        rec.detail = check.detail
    result = DeployResult(slot.id, slot.identifier, "")
    run = Run(result, check, registry, to=to)
    deployer = Deployer(inventory, slot, log, operator)
    with session(deployer), _history(deployer, run):
        run_steps((CHOOSE_STEP,), deployer, run)
        announce.started(deployer, run)
        _prepare(deployer, run, ADMIT + CANDIDATE)
        _go_live(deployer, run)
        run_steps((record.STEP,), deployer, run)
    return _done(result, deployer)


@contextmanager
def _history(deployer: Deployer, run: Run) -> Iterator[None]:
    """A failure in the block goes into the slot's history before it propagates, once the run
    changed something (the claim held, a candidate started): a refusal before that (a branch
    that does not exist, a deploy already running) leaves the registry as it was."""
    try:
        yield
    except StagingError as failure:
        if isinstance(failure, record.Unrecorded):
            raise  # verified and in the registry: not a failed deploy
        if not deployer.changed:
            raise
        warning = record_failure(deployer, run)
        if warning:
            failure.args = (f"{failure}\n{warning}",)
        raise


def _prepare(deployer: Deployer, run: Run, steps: tuple) -> None:
    """`steps` (up to the candidate's verify); a failure or an interruption says nothing was
    switched. A candidate that ran is stopped, and one that failed is marked bad and its
    last log lines shown."""
    try:
        run_steps(steps, deployer, run)
    except (StagingError, Stop) as failure:
        state = "nothing was switched, the previous release keeps serving"
        step = deployer.failed_step
        where = deployer.slot.identifier
        unit_log = ""
        if step in (s.name for s in CANDIDATE):
            with signals_ignored():
                unit_log = _abandon_candidate(deployer, run, failure)
        if isinstance(failure, Stop):
            raise Interrupted(f"{where}: interrupted during {step}; {state}", failure) from None
        raise type(failure)(f"{where}: {step} failed: {failure}; {state}{unit_log}") from None


def _abandon_candidate(deployer: Deployer, run: Run, failure: StagingError | Stop) -> str:
    """Stop the candidate; a failed release (not an interrupted one) is marked bad, and the
    candidate UI's last log lines are kept for the message (what to add to it)."""
    unit_log = ""
    if not isinstance(failure, Stop):
        unit = getattr(failure, "unit", None) or deployer.candidate_units[0]
        unit_log = f"; {run.result.release} marked bad\n--- last lines of {unit} ---\n"
        unit_log += last_lines(deployer, unit=unit)
        if run.to is None:  # `rollback --to` picks a release, it does not judge it
            mark_bad(deployer, run.result.release)
    candidate.stop(deployer)
    return unit_log


def _go_live(deployer: Deployer, run: Run) -> None:
    """The GO_LIVE steps: make the release current and prove it serves its commit; on a
    failure, Ctrl-C or SIGTERM from the switch on, back to what served before if it is
    verified-good, else the newest verified-good release (rollback.roll_back). A connection
    lost after the switch is regained first (reconnect.py), or the one line says what serves."""
    restore = check_live(deployer, run.result.release, run.previous)
    try:
        run_steps(GO_LIVE, deployer, run)
    except Stop as stop:
        roll_back(deployer, run, stop)
    except StagingError as failure:
        step = deployer.failed_step
        if step == "switch":
            raise  # `current` did not move: what served before still serves
        if isinstance(failure, Unreachable) or connection_lost(deployer):
            _regain_or_say(deployer, run, step, restore)
            roll_back(deployer, run, failure, step=step)
        roll_back(deployer, run, failure)


def _regain_or_say(deployer: Deployer, run: Run, step: str, restore: str) -> None:
    """The connection was lost during `step`: regained (reconnect.py), or the one line that
    says what `current` points to and how to restore the last verified one."""
    tries = regain(deployer)
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


def _done(result: DeployResult, deployer: Deployer) -> DeployResult:
    result.url = public_url(deployer.host, deployer.slot)
    result.steps = deployer.log.steps
    return result
