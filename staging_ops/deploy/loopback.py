"""A slot's processes listen on loopback only: on the droplet nothing but nginx and SSH may be
reached from outside. And a port type's instance listens on its own port itself: what answered
its checks there is what was started, not another process that held the port first. Checked
once an instance is judged up (the candidate after its checks, the main processes and workers
after their settle time), on what each instance's process tree really listens on (remote
script slot-instances.sh, remote/listeners.py): a failure is one line that says which process
and why, and the release is not kept.

bin/run-process points the usual servers at loopback for a command that gives only `$PORT`
(gunicorn, uvicorn, Flask, Airflow); this catches what it cannot steer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from staging_ops.deploy.verify import UnitFailed
from staging_ops.errors import StagingError
from staging_ops.processes import AIRFLOW, WEB
from staging_ops.remote.listeners import (
    listeners_command,
    listens_beyond_loopback,
    listens_elsewhere,
    misses_its_port,
    parse_listeners,
)

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

CANDIDATE = "candidate"
CURRENT = "current"


def type_ports(deployer: Deployer, where: str) -> dict[str, int]:
    """The port of each port type's `where` instance (candidate: the host's candidate ports;
    current: the slot's UI and Airflow ports)."""
    slot = deployer.slot
    if where == CANDIDATE:
        return dict(zip((WEB, AIRFLOW), slot.candidate_ports(deployer.host), strict=True))
    return {WEB: slot.ui_port, AIRFLOW: slot.airflow_port}


def check_loopback(deployer: Deployer, where: str) -> None:
    """Each of the slot's `where` instances (candidate: the port types'; current: every
    declared type's) listens on loopback only, a port type's on its own port; UnitFailed
    naming the first that does not."""
    spec = deployer.spec
    if where == CANDIDATE:
        types, units = spec.port_types, deployer.candidate_units
    else:
        types, units = (*spec.port_types, *spec.workers), deployer.units
    ports = type_ports(deployer, where)
    if not types:
        return
    _, out, _ = deployer.run(listeners_command(deployer.paths.root))
    (running,) = parse_listeners(out, 1)
    for ptype, unit in zip(types, units, strict=True):
        sockets = running.get(f"{where}-{ptype}", ())
        problem = listens_beyond_loopback(ptype, where, sockets)
        if not problem and ptype in ports:
            problem = misses_its_port(ptype, where, sockets, ports[ptype])
        if problem:
            raise UnitFailed(problem, unit)


def elsewhere(deployer: Deployer, where: str, ptype: str, port: int) -> str:
    """After `where`'s `ptype` instance failed its check on `port`: "; it listens on ...
    instead ..." when it serves another port, else "" (also when that cannot be read: the
    failure says enough without it)."""
    try:
        _, out, _ = deployer.run(listeners_command(deployer.paths.root), check=False)
        (running,) = parse_listeners(out, 1)
    except StagingError:
        return ""
    hint = listens_elsewhere(running.get(f"{where}-{ptype}", ()), port)
    return f"; {hint}" if hint else ""
