"""The `candidate start` and `candidate verify` steps (the candidate stops with the scheduler's
restart, handover.py): the new release runs
as the slot's candidate (its own units, on the candidate ports: inventory
`candidate_port_offset`) and must answer /api/version with its own commit and Airflow's health
check *before* any request reaches it. nginx keeps the candidate as the backup of the main
instance (render: nginx/slot.conf.j2), so it gets traffic only while the hand-over restarts the
main instance into the same, verified release. Remote script deploy-candidate.sh."""

from __future__ import annotations

import http.client
import json
import time
from typing import TYPE_CHECKING

import paramiko

from staging_ops import remote
from staging_ops.deploy.steps import Run, Step, tail
from staging_ops.deploy.verify import check_units_alive, ssh_get
from staging_ops.errors import StagingError
from staging_ops.health import CHECKS
from staging_ops.remote.scripts import script_text
from staging_ops.render import candidate_units

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

# One request's limit: the sample app answers in milliseconds; a release that accepts the
# connection but says nothing for this long is one that hangs, and fails at once.
REQUEST_TIMEOUT = 5.0
OK, NOT_YET = "ok", "not yet"


def judge_version(status: int, body: bytes, commit: str) -> str:
    """The candidate's /api/version answer -> OK, or the problem. Any answer is final: the
    process that gave it is the new release's, so a wrong one will not right itself."""
    if status != 200:
        return f"/api/version answers HTTP {status}"
    try:
        seen = json.loads(body).get("commit")
    except (ValueError, AttributeError):
        return "/api/version does not answer JSON with a commit"
    if seen != commit:
        return f"/api/version reports commit {seen!r}, not {commit}"
    return OK


def judge_health(status: int) -> str:
    return OK if status == 200 else f"{CHECKS['airflow']} answers HTTP {status}"


def start(deployer: Deployer, release: str) -> None:
    """Stop any candidate (a killed deploy's included), point `candidate` at `release`, start
    the candidate units; behind the lock's fence."""
    _script(deployer, "start", release)


def stop(deployer: Deployer) -> None:
    """Stop the candidate units and remove the `candidate` link; behind the lock's fence."""
    _script(deployer, "stop", "")


def _script(deployer: Deployer, verb: str, release: str) -> None:
    command = remote.script_command(
        "deploy-candidate.sh",
        script_text("deploy-restart-units.sh"),
        verb,
        deployer.paths.root,
        release,
        *candidate_units(deployer.app, deployer.slot),
    )
    code, out, err = deployer.run(command, check=False, guarded=True)
    if code != 0:
        raise StagingError(tail(out or err))


def verify(deployer: Deployer, commit: str, timeout: float | None = None) -> None:
    """The candidate's UI answers /api/version with `commit`, its Airflow webserver answers
    its health check, and both units are up. A unit that died, an answer that is wrong and
    a request that hangs fail at once; a port nobody listens on yet is asked again until the
    inventory's verify_timeout."""
    timeout = deployer.app.verify_timeout if timeout is None else timeout
    deadline = time.monotonic() + timeout
    units = candidate_units(deployer.app, deployer.slot)
    ui_port, airflow_port = deployer.slot.candidate_ports(deployer.host)
    checks = [
        (units[0], ui_port, CHECKS["ui"], lambda s, b: judge_version(s, b, commit)),
        (units[1], airflow_port, CHECKS["airflow"], lambda s, b: judge_health(s)),
    ]
    for unit, port, path, judge in checks:
        _until_answered(deployer, unit, port, path, judge, deadline, timeout)
    check_units_alive(deployer, units)


def _until_answered(deployer, unit, port, path, judge, deadline: float, timeout: float) -> None:
    next_unit_check = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        try:
            status, body = ssh_get(deployer, port, path, timeout=REQUEST_TIMEOUT)
        except TimeoutError:
            raise StagingError(
                f"{path} on the candidate: no answer within {REQUEST_TIMEOUT:.0f}s (it hangs)"
            ) from None
        except (OSError, paramiko.SSHException, http.client.HTTPException):
            # Not listening yet, or cut short while it starts (or already dead: the unit
            # check says which).
            if time.monotonic() >= next_unit_check:
                check_units_alive(deployer, [unit])
                next_unit_check = time.monotonic() + 0.5
            time.sleep(0.05)
            continue
        verdict = judge(status, body)
        if verdict != OK:
            raise StagingError(f"candidate {verdict}")
        return
    raise StagingError(f"{path} on the candidate: no answer within {timeout:.0f}s")


def _start_step(deployer: Deployer, run: Run) -> str:
    start(deployer, run.result.release)
    ports = deployer.slot.candidate_ports(deployer.host)
    return f"{run.result.release} on :{ports[0]} and :{ports[1]}"


def _verify_step(deployer: Deployer, run: Run) -> str:
    verify(deployer, run.result.commit)
    return f"/api/version = {run.result.commit[:12]}, {CHECKS['airflow']} ok (candidate ports)"


START_STEP = Step("candidate start", _start_step)
VERIFY_STEP = Step("candidate verify", _verify_step, crash_point="deploy:candidate-running")
