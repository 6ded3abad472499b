"""The `restart` step: the slot's units restarted all at once, detached from our session
(remote script deploy-restart.sh), behind the lock's fence; each
unit's NRestarts read just before, for verify."""

from __future__ import annotations

from typing import TYPE_CHECKING

from staging_ops.deploy import restart_sh
from staging_ops.deploy.restart_sh import drained
from staging_ops.deploy.steps import tail
from staging_ops.errors import StagingError
from staging_ops.processes import AIRFLOW, WEB
from staging_ops.render import slot_units

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer


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
    first, _, rest = out.partition("\n")
    # The counts come first; a run refused before them (the lock lost) answers only why.
    if code == 0 or first.startswith("{"):
        before = restart_sh.parse_restarts_before([*units, *unwaited], first)
        deployer.restarts_before.update(before)
        out = rest
    if code != 0:
        raise StagingError(tail(out or err))


def restart_command(
    deployer: Deployer, verb: str, units: list[str], unwaited: list[str] | None = None
) -> str:
    """deploy-restart.sh for `units` (waited for; UNIT=PORT drains one) and `unwaited`."""
    # systemd's NRestarts counts automatic restarts and is not reset by our restart (a restart
    # of a unit waiting to auto-restart keeps the count): the script prints it first, so that
    # verify counts only the restarts that come after ours.
    return restart_sh.command(restart_log(deployer), verb, len(units), *units, *(unwaited or []))


def restart_log(deployer: Deployer) -> str:
    """The slot's deploy-restart.sh OUTLOG (the waited units' output; beside it the workers')."""
    return f"{deployer.paths.root}/.restart.log"


def main_ports(deployer: Deployer) -> dict[str, int]:
    """Each main web unit of the slot and the loopback port it serves."""
    ports = {WEB: deployer.slot.ui_port, AIRFLOW: deployer.slot.airflow_port}
    types = deployer.spec.port_types
    units = slot_units(deployer.app, deployer.slot, types)
    return dict(zip(units, (ports[t] for t in types), strict=True))
