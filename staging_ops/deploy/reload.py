"""A slot's live release served again with what provision-all just changed under it (its env
files, unit files, runner, the inventory's commands): the same release, through the deploy's
own hand-over, so nothing drops. provision-all (above deploy, it cannot import it) is handed
`reload_slot` by its task.

    live release   `current`, its commit and whether a deploy verified it (the release
                   listing rollback reads); its process spec
    memory check, candidate start, candidate verify
                   the deploy's steps: the candidate starts with the new files and must pass
                   the same checks. A failure stops it: nothing else was restarted, the
                   running processes keep serving (with what they read when they started)
    hand-over, main verify, candidate stop + scheduler restart
                   the deploy's go-live steps without the switch (`current` does not move)

A live release no deploy verified (a killed deploy's, one made by hand) has nothing proven to
hand over to: its units restart in place (`restart in place`), and the result says for how
long the slot did not answer. The slot's deploy lock is held throughout, as by a deploy."""

from __future__ import annotations

import time
from dataclasses import dataclass

from staging_ops import output
from staging_ops.deploy import admission, candidate, handover, heartbeat
from staging_ops.deploy.logs import last_lines
from staging_ops.deploy.loopback import CURRENT, check_loopback
from staging_ops.deploy.restart import restart
from staging_ops.deploy.rollback import releases, use_release_spec
from staging_ops.deploy.session import Deployer, session, signals_ignored
from staging_ops.deploy.steps import DeployResult, Run, run_steps
from staging_ops.deploy.switch import current_release
from staging_ops.deploy.verify import check_units_alive
from staging_ops.errors import StagingError
from staging_ops.inventory import Inventory, Slot

HANDOVER = "hand-over"
IN_PLACE = "restart in place"
CANDIDATE = (admission.STEP, candidate.START_STEP, candidate.VERIFY_STEP)
GO_LIVE = (handover.HANDOVER_STEP, handover.MAIN_VERIFY_STEP, handover.SCHEDULER_STEP)


@dataclass(frozen=True)
class Reloaded:
    """How the slot took the new files: `how` (HANDOVER or IN_PLACE), the release it serves,
    and for a restart in place how long the slot did not answer (None: it never stopped)."""

    how: str
    release: str
    down_seconds: float | None
    detail: str


def reload_slot(
    inventory: Inventory, slot: Slot, in_place: bool, log: output.StepLog, operator: str
) -> Reloaded:
    """Serve `slot`'s live release again with the files on the droplet now: a hand-over when
    it is verified (and `in_place` is not asked), else a restart in place. Raises StagingError
    with one line saying what failed and what serves."""
    deployer = Deployer(inventory, slot, log, operator)
    with session(deployer):
        with deployer.step("live release") as rec:
            run, verified = _live(deployer)
            rec.detail = f"{run.result.release} ({'verified' if verified else 'never verified'})"
        if in_place or not verified:
            return _in_place(deployer, run)
        return _hand_over(deployer, run)


def _live(deployer: Deployer) -> tuple[Run, bool]:
    """The live release as a Run of its own (the deploy's steps read it from there), and
    whether a deploy verified it."""
    release = current_release(deployer)
    if release is None:
        raise StagingError(f"{deployer.slot.identifier} has no live release (`current`)")
    entry = next((r for r in releases(deployer) if r.name == release), None)
    use_release_spec(deployer, release)
    result = DeployResult(deployer.slot.id, deployer.slot.identifier, "", release=release)
    verified = bool(entry and entry.ok and not entry.bad)
    if entry:
        result.branch, result.commit = entry.branch, entry.commit
    # No claim and no registry: a reload neither switches (the fence) nor records.
    return Run(result, claim=None, registry=None), verified  # type: ignore[arg-type]


def _hand_over(deployer: Deployer, run: Run) -> Reloaded:
    where = deployer.slot.identifier
    try:
        run_steps(CANDIDATE, deployer, run)
    except StagingError as failure:
        step = deployer.failed_step
        unit_log = ""
        with signals_ignored():
            if step != admission.STEP.name:
                unit = getattr(failure, "unit", None) or deployer.candidate_units[0]
                unit_log = f"\n--- last lines of {unit} ---\n{last_lines(deployer, unit=unit)}"
                candidate.stop(deployer)
        raise StagingError(
            f"{where}: {step} failed: {failure}; nothing was restarted, the running processes "
            f"keep serving {run.result.release}{unit_log}"
        ) from None
    try:
        run_steps(GO_LIVE, deployer, run)
    except StagingError as failure:
        # The main instances already run with the new files: there is no older state to go
        # back to (the files are what the inventory says now). The candidate, if still up,
        # keeps answering as nginx's backup.
        raise StagingError(
            f"{where}: {deployer.failed_step} failed: {failure}; the main processes were restarted "
            f"with the new files"
        ) from None
    return Reloaded(HANDOVER, run.result.release, None, "candidate verified, then handed over")


def _in_place(deployer: Deployer, run: Run) -> Reloaded:
    """Every unit of the slot restarted at once; down until the UI (and Airflow) answer
    again, measured; the workers judged after their settle time (up, and beating where
    Airflow's health answer says)."""
    with deployer.step(IN_PLACE) as rec:
        began = time.monotonic()
        restart(deployer)
        restarted = heartbeat.droplet_now(deployer)
        try:
            handover.verify_main(deployer, run.result.commit)
            down = time.monotonic() - began
            time.sleep(max(0.0, began + handover.worker_settle(deployer) - time.monotonic()))
            check_units_alive(deployer, deployer.units)
            heartbeat.check_heartbeats(deployer, restarted)
            check_loopback(deployer, CURRENT)
        except StagingError as failure:
            raise StagingError(
                f"{deployer.slot.identifier}: {IN_PLACE} failed: {failure}; "
                f"{run.result.release} was restarted with the new files"
            ) from None
        rec.detail = f"{len(deployer.units)} unit(s) restarted, down {down:.1f}s"
    return Reloaded(IN_PLACE, run.result.release, down, rec.detail)
