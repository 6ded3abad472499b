"""The `restart` step: the slot's units restarted all at once, detached from our session
(remote scripts deploy-restart.sh and deploy-restart-units.sh), behind the lock's fence; each
unit's NRestarts read just before, for verify."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from staging_ops import crash_points, remote
from staging_ops.deploy.steps import Run, Step, tail
from staging_ops.errors import StagingError
from staging_ops.remote.scripts import script_text

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

RESTARTS_MARK = "restarts-before:"


def restart(deployer: Deployer, stop_only: bool = False) -> None:
    """Restart (or stop) the slot's units, all at once, under setsid: a deploy killed now
    still leaves them restarted."""
    # systemd's NRestarts counts automatic restarts and is not reset by our restart (a restart
    # of a unit waiting to auto-restart keeps the count): the script prints it first, so that
    # verify counts only the restarts that come after ours.
    command = remote.script_command(
        "deploy-restart.sh",
        script_text("deploy-restart-units.sh"),
        RESTARTS_MARK,
        f"{deployer.paths.root}/.restart.log",
        "stop" if stop_only else "restart",
        *deployer.units,
    )
    code, out, err = deployer.run(command, check=False, guarded=True)
    first, _, out = out.partition("\n")
    deployer.restarts_before = restarts_before(deployer.units, first)
    if code != 0:
        raise StagingError(tail(out or err))


def restarts_before(units: list[str], line: str) -> dict[str, int]:
    """Each unit's NRestarts from the script's first line (`restarts-before: 0 3 0`); a count
    systemd did not give is 0."""
    counts = line.removeprefix(RESTARTS_MARK).split()
    return {unit: int(c) if c.isdigit() else 0 for unit, c in zip(units, counts, strict=False)}


def _step(deployer: Deployer, run: Run) -> None:
    if os.environ.get(crash_points.ENV) == "deploy:during-restart":
        # Dies while the remote restart is under way, as a Ctrl-\\ or kill -9 would.
        threading.Timer(0.15, crash_points.crash_point, args=("deploy:during-restart",)).start()
    restart(deployer)


STEP = Step("restart", _step)
