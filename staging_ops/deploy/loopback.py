"""A slot's processes listen on loopback only: on the droplet nothing but nginx and SSH may be
reached from outside. Checked once an instance is judged up (the candidate after its checks,
the main processes and workers after their settle time), on what each instance's process
tree really listens on (remote script slot-instances.sh, remote/listeners.py): a process that
binds every address fails the deploy with one line that says which and how to mend it, and
the release is not kept.

bin/run-process points the usual servers at loopback for a command that gives only `$PORT`
(gunicorn, uvicorn, Flask, Airflow); this catches what it cannot steer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from staging_ops.deploy.verify import UnitFailed
from staging_ops.remote.listeners import (
    listeners_command,
    listens_beyond_loopback,
    parse_listeners,
)

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

CANDIDATE = "candidate"
CURRENT = "current"


def check_loopback(deployer: Deployer, where: str) -> None:
    """Each of the slot's `where` instances (candidate: the port types'; current: every
    declared type's) listens on loopback only; UnitFailed naming the first that does not."""
    spec = deployer.spec
    if where == CANDIDATE:
        types, units = spec.port_types, deployer.candidate_units
    else:
        types, units = (*spec.port_types, *spec.workers), deployer.units
    if not types:
        return
    _, out, _ = deployer.run(listeners_command(deployer.paths.root))
    (running,) = parse_listeners(out, 1)
    for ptype, unit in zip(types, units, strict=True):
        problem = listens_beyond_loopback(ptype, where, running.get(f"{where}-{ptype}", ()))
        if problem:
            raise UnitFailed(problem, unit)
