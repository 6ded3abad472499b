"""The `restart` step: the slot's units restarted all at once, detached from our session
(remote script deploy-restart.sh), behind the lock's fence; each
unit's NRestarts read just before, for verify."""

from __future__ import annotations

from typing import TYPE_CHECKING

from staging_ops import remote
from staging_ops.deploy.steps import tail
from staging_ops.errors import StagingError

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

RESTARTS_MARK = "restarts-before:"


def restart(
    deployer: Deployer,
    stop_only: bool = False,
    units: list[str] | None = None,
    unwaited: list[str] | None = None,
) -> None:
    """Restart (or stop) `units` (default: all of the slot's), all at once, under setsid: a
    deploy killed now still leaves them restarted. `unwaited` units are restarted at the same
    time but not waited for (workers: their settle check judges them later)."""
    units = deployer.units if units is None else units
    unwaited = unwaited or []
    if not units and not unwaited:
        return  # the script with no unit would reset and show every unit on the droplet
    # systemd's NRestarts counts automatic restarts and is not reset by our restart (a restart
    # of a unit waiting to auto-restart keeps the count): the script prints it first, so that
    # verify counts only the restarts that come after ours.
    command = remote.script_command(
        "deploy-restart.sh",
        RESTARTS_MARK,
        f"{deployer.paths.root}/.restart.log",
        "stop" if stop_only else "restart",
        len(units),
        *units,
        *unwaited,
    )
    code, out, err = deployer.run(command, check=False, guarded=True)
    first, _, out = out.partition("\n")
    deployer.restarts_before.update(restarts_before([*units, *unwaited], first))
    if code != 0:
        raise StagingError(tail(out or err))


def restarts_before(units: list[str], line: str) -> dict[str, int]:
    """Each unit's NRestarts from the script's first line (`restarts-before: 0 3 0`); a count
    systemd did not give is 0."""
    counts = line.removeprefix(RESTARTS_MARK).split()
    return {unit: int(c) if c.isdigit() else 0 for unit, c in zip(units, counts, strict=False)}
