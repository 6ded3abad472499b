"""The workers' heartbeats, part of `candidate stop + scheduler restart` (handover.py): a
worker whose component Airflow's health answer reports (scheduler, dag_processor, triggerer)
must have beaten since its restart within the settle window, else it is judged failed, even
with its unit up. A unit that stays `active` says only that the process has not exited; a
scheduler stuck before its job loop (a DAG folder it cannot parse, a database it cannot
reach) keeps the unit up and never beats. The judgement is pure (processes.judge); here are the
droplet's clock (heartbeats are written with it) and the answer, read on the main Airflow port
through our SSH connection (the main instance is verified by then)."""

from __future__ import annotations

import http.client
import json
import shlex
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import paramiko

from staging_ops.deploy.restart import restart_log
from staging_ops.deploy.restart_sh import workers_done_path
from staging_ops.deploy.verify import UnitFailed, check_units_alive, ssh_get
from staging_ops.processes import AIRFLOW
from staging_ops.processes.judge import AIRFLOW2_HEALTH, airflow_fallback, judge_heartbeat
from staging_ops.processes.status import component_name
from staging_ops.render import slot_units

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

# A health answer that does not come is asked again this many times, this far apart.
ANSWER_TRIES = 3
POLL = 0.5
# How long past the settle window a worker that is up may take to show its first heartbeat.
HEARTBEAT_GRACE = 30.0
# How long after the hand-over its restart of the workers may take to be done.
RESTART_DONE_WAIT = 30.0


def droplet_now(deployer: Deployer) -> datetime:
    """The droplet's clock (what Airflow stamps its heartbeats with), not ours."""
    _, out, _ = deployer.run("date -u +%s.%N")
    return datetime.fromtimestamp(float(out.strip()), UTC)


def workers_restarted(deployer: Deployer) -> tuple[datetime, float]:
    """When the hand-over's restart of the workers was done, by the droplet's clock (written
    by deploy-restart.sh once the old processes were gone and the new ones started), and how
    many seconds ago: waited for, since the hand-over does not wait for it (an old scheduler
    finishing its tasks can take its TimeoutStopSec) and a worker judged before its restart is
    done would be found stopped. After RESTART_DONE_WAIT: the droplet's clock now (its units'
    state then says what is wrong)."""
    done = shlex.quote(workers_done_path(restart_log(deployer)))
    command = f"printf '%s ' \"$(cat {done} 2>/dev/null)\"; date -u +%s.%N"
    deadline = deployer.handed_over + RESTART_DONE_WAIT
    while True:
        _, out, _ = deployer.run(command)
        fields = out.split()
        now = datetime.fromtimestamp(float(fields[-1]), UTC)
        if len(fields) == 2:
            at = datetime.fromtimestamp(float(fields[0]), UTC)
            return at, max(0.0, (now - at).total_seconds())
        if time.monotonic() >= deadline:
            return now, 0.0
        time.sleep(POLL / 2)


def check_heartbeats(deployer: Deployer, since: datetime) -> None:
    """Once the settle window has passed: UnitFailed naming the first declared worker whose
    component the health answer reports but that has not beaten since `since`, within
    HEARTBEAT_GRACE more (a first beat comes seconds after a start, later on a busy droplet:
    a good release is not failed for a slow start, a stuck worker is, and a worker that dies
    meanwhile is failed at once). The answer keeps each component's last heartbeat time, so a
    beat at any moment shows. Nothing to judge without an Airflow process or a JSON answer."""
    if AIRFLOW not in deployer.spec.port_types or not deployer.spec.workers:
        return
    deadline = time.monotonic() + HEARTBEAT_GRACE
    # What the last answer said was missing: a moment without an answer judges nothing, and
    # must not end the wait as if every worker had beaten.
    missing: list[tuple[str, str]] = []
    while True:
        answer = _answer_in_tries(deployer)
        if answer is not None:
            missing = missing_beats(deployer, answer, since)
            if not missing:
                return
        if time.monotonic() >= deadline:
            if not missing:
                return  # no answer to judge by, ever: nothing to judge
            ptype, problem = missing[0]
            unit = slot_units(deployer.app, deployer.slot, (ptype,))[0]
            raise UnitFailed(f"{unit}: {problem}", unit)
        check_units_alive(deployer, deployer.worker_units)
        time.sleep(POLL)


def _answer_in_tries(deployer: Deployer) -> object:
    answer = None
    for _ in range(ANSWER_TRIES):
        answer = _answer(deployer)
        if answer is not None:
            break
        time.sleep(POLL)  # the webserver was verified: a moment's hiccup
    return answer


def missing_beats(deployer: Deployer, answer: object, since: datetime) -> list[tuple[str, str]]:
    """(worker type, what is missing) for each declared worker not yet seen beating."""
    found = []
    for ptype in deployer.spec.workers:
        problem = judge_heartbeat(component_name(ptype), answer, since)
        if problem:
            found.append((ptype, problem))
    return found


def _answer(deployer: Deployer) -> object:
    """Airflow's health JSON on the main Airflow port (Airflow 3's path where 2's is 404);
    None when it does not answer JSON."""
    port = deployer.slot.airflow_port
    try:
        status, body = ssh_get(deployer, port, AIRFLOW2_HEALTH)
        other = airflow_fallback(AIRFLOW2_HEALTH, status)
        if other:
            status, body = ssh_get(deployer, port, other)
        return json.loads(body) if status == 200 else None
    except (OSError, paramiko.SSHException, http.client.HTTPException, ValueError):
        return None
