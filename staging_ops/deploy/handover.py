"""The `hand-over`, `main verify` and `candidate stop + scheduler restart` steps, after the
switch: the main UI and Airflow webserver restart into the new release (`current`) while nginx
sends every request that finds them down to the candidate, which already serves that release
(verified by `candidate verify`); the main instances are then verified on the UI port and
through nginx; the scheduler (no port, no candidate: two would run the same DAGs twice)
restarts last, once the web services are verified, and must stay up. The candidate, no longer
needed, stops while the scheduler settles."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from staging_ops.deploy import candidate
from staging_ops.deploy.restart import crash_while_running, restart
from staging_ops.deploy.steps import Run, Step
from staging_ops.deploy.verify import check_units_alive, verify
from staging_ops.render import CANDIDATE_SERVICES, SERVICES

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

# A scheduler that cannot start dies within this of its restart (the sample app's in ~0.1 s,
# five times over on a loaded machine).
SCHEDULER_SETTLE = 0.5


def web_units(deployer: Deployer) -> list[str]:
    """The main units that have a candidate (UI first)."""
    return [u for s, u in zip(SERVICES, deployer.units, strict=True) if s in CANDIDATE_SERVICES]


def other_units(deployer: Deployer) -> list[str]:
    """The main units without a candidate: the scheduler."""
    return [u for u in deployer.units if u not in web_units(deployer)]


def hand_over(deployer: Deployer) -> None:
    """Restart the main web units into `current`, detached (restart.py)."""
    restart(deployer, units=web_units(deployer))


def verify_main(deployer: Deployer, commit: str) -> None:
    verify(deployer, commit, units=web_units(deployer))


def restart_scheduler(deployer: Deployer) -> None:
    """Restart the scheduler, stop the candidate while the scheduler settles, then see the
    scheduler still up, not restarted, SCHEDULER_SETTLE seconds after its restart: one that
    dies on start is then failed or dead waiting for its automatic restart (RestartSec)."""
    units = other_units(deployer)
    restart(deployer, units=units)
    settled = time.monotonic() + SCHEDULER_SETTLE
    candidate.stop(deployer)
    time.sleep(max(0.0, settled - time.monotonic()))
    check_units_alive(deployer, units)


def _hand_over_step(deployer: Deployer, run: Run) -> str:
    crash_while_running("deploy:during-handover")
    hand_over(deployer)
    return "main UI and Airflow webserver restarted; nginx fell through to the candidate"


def _verify_step(deployer: Deployer, run: Run) -> str:
    verify_main(deployer, run.result.commit)
    return f"/api/version = {run.result.commit[:12]} (UI port and nginx)"


def _scheduler_step(deployer: Deployer, run: Run) -> None:
    crash_while_running("deploy:during-restart")
    restart_scheduler(deployer)


HANDOVER_STEP = Step("hand-over", _hand_over_step)
MAIN_VERIFY_STEP = Step("main verify", _verify_step)
SCHEDULER_STEP = Step("candidate stop + scheduler restart", _scheduler_step)
