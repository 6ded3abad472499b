"""Going back to a verified release: after a deploy fails (or is interrupted) once `current`
has moved, and for `invoke rollback` (its `choose release` step). Which release is a pure
decision over the slot's release listing (remote script deploy-releases.sh `list`): only a
release that passed verify (`.ok`, or a line in deploys.log) and is not marked `.bad`, so a
release a killed deploy left behind is never picked."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from staging_ops.deploy import candidate, releases_sh
from staging_ops.deploy.golive import CANDIDATE, GO_LIVE
from staging_ops.deploy.handover import align_processes
from staging_ops.deploy.logs import last_lines
from staging_ops.deploy.release import mark_bad
from staging_ops.deploy.releases_sh import Release
from staging_ops.deploy.restart import restart
from staging_ops.deploy.session import Interrupted, Stop, signals_ignored
from staging_ops.deploy.steps import DeployResult, Run, Step, run_quietly
from staging_ops.deploy.switch import current_release, switch
from staging_ops.deploy.verify import verify
from staging_ops.errors import BadInput, StagingError
from staging_ops.inventory import Slot
from staging_ops.processes import ProcessSpec, spec_from_json

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer


def releases(deployer: Deployer) -> list[Release]:
    """Every release of the slot, newest first (releases_sh.parse_list)."""
    _, out, _ = deployer.run(releases_sh.list_command(deployer.paths.releases))
    return releases_sh.parse_list(out)


def newest_good(
    releases: list[Release], exclude: str | None, prefer: str | None = None
) -> Release | None:
    """`prefer` if it passed verify and was not marked bad since, else the newest such
    release, never `exclude`. `prefer` is what served before: a newer good release may be
    one an operator rolled away from."""
    good = [r for r in releases if r.ok and not r.bad and r.name != exclude]
    chosen = next((r for r in good if r.name == prefer), None)
    return chosen or (good[0] if good else None)  # newest first: names start with UTC time


def rollback_target(
    releases: list[Release], current: str | None, to: str | None, slot: Slot
) -> Release:
    """`invoke rollback`'s target: `to` if it is not marked bad (it is verified on the way);
    else the newest verified-good release older than the current one (or any, if the current
    one is not a release)."""
    if to:
        for item in releases:
            if item.name == to:
                if item.bad:
                    raise BadInput(f"{slot.identifier}: release {to} is marked bad")
                return item
        names = ", ".join(r.name for r in releases) or "none"
        raise BadInput(f"{slot.identifier}: no release {to!r} (releases: {names})")
    names = [r.name for r in releases]
    older = releases[names.index(current) + 1 :] if current in names else releases
    target = newest_good(older, exclude=current)
    if target is None:
        raise StagingError(f"{slot.identifier}: no earlier verified-good release to roll back to")
    return target


def use_release_spec(deployer: Deployer, release: str) -> None:
    """The deployer's units become those of `release`'s processes (its .process-spec.json;
    the inventory's for a release made before there was one)."""
    command = releases_sh.spec_command(deployer.paths.releases, release)
    _, out, _ = deployer.run(command, check=False)
    deployer.use_spec(spec_from_json(out.strip() or None, deployer.app))


def _choose(deployer: Deployer, run: Run) -> str:
    current = current_release(deployer)
    target = rollback_target(releases(deployer), current, run.to, deployer.slot)
    use_release_spec(deployer, target.name)
    run.previous = current
    run.result.branch, run.result.commit = target.branch, target.commit
    run.result.release = target.name
    return f"{current or 'nothing'} -> {target.name}"


CHOOSE_STEP = Step("choose release", _choose)


def roll_back(
    deployer: Deployer,
    run: Run,
    failure: StagingError | Stop,
    step: str | None = None,
) -> None:
    """After `run`'s release was switched to: back to what served before (`run.previous`) if
    it is verified-good, else the newest verified-good release other than the failed one
    (never one that was not verified, e.g. left by a killed deploy), verified; the slot is
    stopped if there is none. A failure marks the failed release bad; an interruption or a
    lost connection (regained: `step` names where it was lost) leaves it unverified. Always
    raises."""
    failed = run.result.release
    lost = step is not None
    interrupted = isinstance(failure, Stop) or lost
    step = step or deployer.failed_step
    unit = getattr(failure, "unit", None) or deployer.units[0]
    with signals_ignored():
        unit_log = "" if interrupted else last_lines(deployer, unit=unit)
        if not interrupted:
            mark_bad(deployer, failed)
        target = _restore_good_release(deployer, run)
    back = f"rolled back to {target or 'nothing (slot stopped)'}"
    where = deployer.slot.identifier
    if lost:
        raise StagingError(
            f"{where}: connection lost during {step}, regained; {back}; {failed} left unverified"
        )
    if isinstance(failure, Stop):
        raise Interrupted(
            f"{where}: interrupted during {step}; {back}; {failed} left unverified", failure
        )
    raise StagingError(
        f"{where}: {step} failed: {failure}; {back}; {failed} marked bad\n--- last lines of "
        f"{unit} ---\n{unit_log}"
    )


def _restore_good_release(deployer: Deployer, run: Run) -> str | None:
    """The `rollback` step: switch to, restart and verify what served before `run` if
    verified-good, else the newest verified-good release but the failed one; its name."""
    failed = run.result.release
    with deployer.step("rollback") as rec:
        target = newest_good(releases(deployer), exclude=failed, prefer=run.previous)
        if target is None:
            candidate.stop(deployer)
            switch(deployer, None)
            restart(deployer, stop_only=True)
            deployer.use_spec(ProcessSpec({}))
            align_processes(deployer)  # no process declared: every one of the slot stops
            rec.detail = "no verified-good release: slot stopped"
            return None
        use_release_spec(deployer, target.name)
        slot = deployer.slot
        # The full commit from the release's .release-env (the name has only 7 digits).
        going = DeployResult(
            slot.id,
            slot.identifier,
            target.branch,
            commit=target.commit or "unknown",
            release=target.name,
        )
        rec.detail = serve_verified(deployer, replace(run, result=going, previous=failed))
        return target.name


def serve_verified(deployer: Deployer, back: Run) -> str:
    """`back`'s release live through the same steps a deploy makes it live with (golive.py):
    candidate start and verify, then GO_LIVE (switch, main restart with the candidate as
    nginx's backup, main verify, candidate stop + scheduler), without their lines. If the
    candidate cannot prove the release (it is what served before; its own candidate failing
    says more about the droplet than about it), the release is switched to and restarted in
    place, and verified, as before candidates existed. The step's detail."""
    release, commit = back.result.release, back.result.commit
    try:
        run_quietly(CANDIDATE, deployer, back)
    except StagingError as failure:
        candidate.stop(deployer)
        switch(deployer, release)
        align_processes(deployer)
        restart(deployer)
        verify(deployer, commit)
        return f"{release} serves again (restarted in place: its candidate failed: {failure})"
    run_quietly(GO_LIVE, deployer, back)
    return f"{release} serves again (verified hand-over)"
