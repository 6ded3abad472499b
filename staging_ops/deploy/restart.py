"""The `restart` step: the slot's units restarted all at once, detached from our session
(remote script deploy-restart.sh), behind the lock's fence; each
unit's NRestarts read just before, for verify."""

from __future__ import annotations

from typing import TYPE_CHECKING

from staging_ops import remote
from staging_ops.deploy.steps import tail
from staging_ops.errors import StagingError
from staging_ops.processes import AIRFLOW, WEB
from staging_ops.render import slot_units

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
    time but not waited for (workers: their settle check judges them later). The main web
    units are drained (deploy-restart.sh UNIT=PORT)."""
    units = deployer.units if units is None else units
    unwaited = unwaited or []
    if not units and not unwaited:
        return  # the script with no unit would reset and show every unit on the droplet
    verb = "stop" if stop_only else "restart"
    command = restart_command(deployer, verb, drained(units, main_ports(deployer)), unwaited)
    code, out, err = deployer.run(command, check=False, guarded=True)
    first, _, out = out.partition("\n")
    deployer.restarts_before.update(restarts_before([*units, *unwaited], first))
    if code != 0:
        raise StagingError(tail(out or err))


def restart_command(
    deployer: Deployer, verb: str, units: list[str], unwaited: list[str] | None = None
) -> str:
    """deploy-restart.sh for `units` (waited for; UNIT=PORT drains one) and `unwaited`."""
    # systemd's NRestarts counts automatic restarts and is not reset by our restart (a restart
    # of a unit waiting to auto-restart keeps the count): the script prints it first, so that
    # verify counts only the restarts that come after ours.
    return remote.script_command(
        "deploy-restart.sh",
        RESTARTS_MARK,
        f"{deployer.paths.root}/.restart.log",
        verb,
        len(units),
        *units,
        *(unwaited or []),
    )


def main_ports(deployer: Deployer) -> dict[str, int]:
    """Each main web unit of the slot and the loopback port it serves."""
    ports = {WEB: deployer.slot.ui_port, AIRFLOW: deployer.slot.airflow_port}
    types = deployer.spec.port_types
    units = slot_units(deployer.app, deployer.slot, types)
    return dict(zip(units, (ports[t] for t in types), strict=True))


def drained(units: list[str], ports: dict[str, int]) -> list[str]:
    """`units` as deploy-restart.sh takes them: UNIT=PORT for a unit that serves a port
    (drained, then its exit cut short), the others by name."""
    return [f"{unit}={ports[unit]}" if unit in ports else unit for unit in units]


def restarts_before(units: list[str], line: str) -> dict[str, int]:
    """Each unit's NRestarts from the script's first line (`restarts-before: 0 3 0`); a count
    systemd did not give is 0."""
    counts = line.removeprefix(RESTARTS_MARK).split()
    return {unit: int(c) if c.isdigit() else 0 for unit, c in zip(units, counts, strict=False)}
