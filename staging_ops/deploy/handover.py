"""The `hand-over`, `main verify` and `candidate stop + scheduler restart` steps, after the
switch: the main UI and Airflow webserver restart into the new release (`current`) while nginx
sends every request that finds them down to the candidate, which already serves that release
(verified by `candidate verify`); the workers (the scheduler …: no port, no candidate, since two
would run the same DAGs twice) restart in the same command, after the web units. The main
instances are then verified on their ports and through nginx while the workers settle; the
candidate, no longer needed, stops; and each worker must still be up its settle time after its
restart. Settling while the main instances start, not after them, saves a deploy the longer of
the two (seconds: a real scheduler needs 5 to show it stays up, Airflow's webserver as long to
start)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from staging_ops.deploy import candidate, heartbeat, processes_sh
from staging_ops.deploy.loopback import CURRENT, check_loopback
from staging_ops.deploy.restart import restart
from staging_ops.deploy.steps import Run, Step, tail
from staging_ops.deploy.verify import check_units_alive, ssh_get, verify
from staging_ops.errors import StagingError
from staging_ops.health import slot_get
from staging_ops.processes import AIRFLOW
from staging_ops.render import TYPE_SERVICES, slot_units, worker_unit_prefix

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer


def web_units(deployer: Deployer) -> list[str]:
    """The main units that have a candidate (UI first)."""
    return deployer.web_units


def other_units(deployer: Deployer) -> list[str]:
    """The main units without a candidate: the workers (the scheduler …)."""
    return deployer.worker_units


def hand_over(deployer: Deployer) -> None:
    """The slot's processes made those the release declares (align_processes), then the main
    web units and the workers restarted into `current` in one detached command (restart.py),
    waiting only for the web units (main verify must not find the old instance still
    stopping); the workers' settle time counts from the end of their restart."""
    align_processes(deployer)
    restart(deployer, units=web_units(deployer), unwaited=other_units(deployer))
    deployer.handed_over = time.monotonic()


def verify_main(deployer: Deployer, commit: str) -> None:
    """The UI on its port and through nginx (verify.py), then every other port type (Airflow)
    by its check on its main port and through nginx, before the candidate stops: nginx falls
    back to the candidate only while the main instance refuses, so a main instance still
    starting when the candidate went away would answer 502."""
    verify(deployer, commit, units=web_units(deployer))
    if AIRFLOW not in deployer.spec.port_types:
        return
    timeout = deployer.app.verify_timeout
    deadline = time.monotonic() + timeout
    unit = slot_units(deployer.app, deployer.slot, (AIRFLOW,))[0]
    port = deployer.slot.airflow_port
    host, slot = deployer.host, deployer.slot

    def direct(path: str, request_timeout: float) -> tuple[int, bytes]:
        return ssh_get(deployer, port, path, timeout=request_timeout)

    def nginx(path: str, request_timeout: float) -> tuple[int, bytes]:
        response = slot_get(host, slot, path, timeout=request_timeout)
        return response.status_code, response.content

    started = deployer.handed_over
    for check in candidate.checks_of(deployer, AIRFLOW):
        args = (commit, deadline, timeout)
        candidate.run_check(deployer, unit, direct, check, *args, "on its port", started)
        # The same process, already answering: its initialDelay is past.
        candidate.run_check(deployer, unit, nginx, check, *args, "via nginx", started=0.0)


def restart_scheduler(deployer: Deployer) -> None:
    """The candidate stops; the workers (the scheduler …), restarted by the hand-over, must
    each still be up, not restarted, their settle time after that restart (the inventory's
    worker_uptime, or app.json's `uptime` for the type): one that dies on start is then failed
    or dead waiting for its automatic restart (RestartSec); and, where Airflow's health answer
    reports its component, have beaten since the restart (heartbeat.py). Then every process
    of the slot listens on loopback only (loopback.py)."""
    candidate.stop(deployer)
    units = other_units(deployer)
    if units:
        # The settle time counts from the end of the workers' restart, not from the
        # hand-over, which did not wait for it.
        restarted, ago = heartbeat.workers_restarted(deployer)
        time.sleep(max(0.0, worker_settle(deployer) - ago))
        check_units_alive(deployer, units)
        # Up is not enough where Airflow's health answer reports the worker: it must have
        # beaten since its restart, within the settle time (heartbeat.py).
        heartbeat.check_heartbeats(deployer, restarted)
    check_loopback(deployer, CURRENT)


def worker_settle(deployer: Deployer) -> float:
    """How long the workers must stay up after their restart: the longest `uptime` app.json
    gives a worker type, else the inventory's worker_uptime."""
    uptimes = [
        c.uptime
        for ptype in deployer.spec.workers
        for c in deployer.spec.startup_checks(ptype)
        if c.uptime is not None
    ]
    return max(uptimes, default=deployer.app.worker_uptime)


def align_processes(deployer: Deployer) -> None:
    """The slot runs exactly the processes its release declares: worker units of types it no
    longer declares are stopped and disabled, new ones enabled at boot (remote script
    deploy-processes.sh), and the slot's own units of undeclared types are stopped."""
    spec = deployer.spec
    own = slot_units(deployer.app, deployer.slot, tuple(TYPE_SERVICES))
    declared = set(deployer.units)
    keep = [u for u in deployer.worker_units if u not in own]
    command = processes_sh.command(
        deployer.host.systemd_dir,
        worker_unit_prefix(deployer.app, deployer.slot),
        len(keep),
        *keep,
        *(u for u in own if u not in declared),
    )
    code, out, err = deployer.run(command, check=False, guarded=True)
    if code != 0:
        raise StagingError(f"processes of {spec.source}: {tail(err or out)}")


def _hand_over_step(deployer: Deployer, run: Run) -> str:
    hand_over(deployer)
    return "main UI and Airflow webserver restarted; nginx fell through to the candidate"


def _verify_step(deployer: Deployer, run: Run) -> str:
    verify_main(deployer, run.result.commit)
    return f"/api/version = {run.result.commit[:12]} (UI port and nginx)"


def _scheduler_step(deployer: Deployer, run: Run) -> None:
    restart_scheduler(deployer)


HANDOVER_STEP = Step("hand-over", _hand_over_step, crash_during="deploy:during-handover")
MAIN_VERIFY_STEP = Step("main verify", _verify_step)
SCHEDULER_STEP = Step(
    "candidate stop + scheduler restart", _scheduler_step, crash_during="deploy:during-restart"
)
