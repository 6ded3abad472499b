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
from collections.abc import Callable
from typing import TYPE_CHECKING

import paramiko

from staging_ops.deploy import candidate_sh
from staging_ops.deploy.loopback import CANDIDATE, check_loopback, elsewhere, type_ports
from staging_ops.deploy.progress import PROGRESS_EVERY
from staging_ops.deploy.restart import restart_command
from staging_ops.deploy.restart_sh import drained
from staging_ops.deploy.steps import Run, Step, tail
from staging_ops.deploy.verify import UnitFailed, check_units_alive, ssh_get
from staging_ops.errors import StagingError
from staging_ops.processes import WEB, HealthCheck
from staging_ops.processes.judge import OK, builtin_check, fallback_path, judge_answer
from staging_ops.render import candidate_units

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

# One request's limit: the sample app answers in milliseconds; a release that accepts the
# connection but says nothing for this long is one that hangs, and fails at once.
REQUEST_TIMEOUT = 5.0
# How often an app.json check asks again, within one attempt, a port that does not answer yet.
NOT_LISTENING_POLL = 0.1
NOT_YET = "not yet"
# (status, body) of one GET, on whatever path the check asks.
Getter = Callable[[str, float], tuple[int, bytes]]


class Waiting:
    """Says every PROGRESS_EVERY seconds what a check still waits for (Airflow takes 5-40 s
    to answer), so a slow start reads as progress, not as a hang."""

    def __init__(self, deployer: Deployer, what: str):
        self.deployer, self.what = deployer, what
        self.start = time.monotonic()
        self.next = self.start + PROGRESS_EVERY

    def tick(self, state: str) -> None:
        now = time.monotonic()
        if now >= self.next:
            self.next = now + PROGRESS_EVERY
            self.deployer.log.progress(f"{self.what}: {state} ({now - self.start:.0f}s)")


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


def start(deployer: Deployer, release: str) -> None:
    """Stop any candidate (a killed deploy's included), point `candidate` at `release`, start
    the candidate units of the release's port types; behind the lock's fence. Their start
    time is what app.json's initialDelay counts from."""
    _script(deployer, "start", release)
    deployer.candidate_started = time.monotonic()


def stop(deployer: Deployer) -> None:
    """Stop the candidate units, drained (restart.py: the interpreters' exit is not waited
    for), then remove the `candidate` link; behind the lock's fence."""
    app, slot = deployer.app, deployer.slot
    ports = dict(zip(candidate_units(app, slot), slot.candidate_ports(deployer.host), strict=True))
    units = _all_units(deployer)
    # The link goes whatever the drained stop said, as deploy-candidate.sh's own stop does.
    deployer.run(
        restart_command(deployer, "stop", drained(units, ports)), check=False, guarded=True
    )
    _script(deployer, "stop", "")


def _all_units(deployer: Deployer) -> list[str]:
    """Every candidate unit, a killed deploy's whatever it declared; the declared ones first
    (those deploy-candidate.sh starts)."""
    return list(
        dict.fromkeys([*deployer.candidate_units, *candidate_units(deployer.app, deployer.slot)])
    )


def _script(deployer: Deployer, verb: str, release: str) -> None:
    _run(deployer, _command(deployer, verb, release))


def _command(deployer: Deployer, verb: str, release: str) -> str:
    build = candidate_sh.start_command if verb == "start" else candidate_sh.stop_command
    units = _all_units(deployer)
    return build(deployer.paths.root, release, len(deployer.candidate_units), *units)


def _run(deployer: Deployer, command: str) -> None:
    code, out, err = deployer.run(command, check=False, guarded=True)
    if code != 0:
        raise StagingError(tail(out or err))


def checks_of(deployer: Deployer, ptype: str) -> tuple[HealthCheck, ...]:
    """The port type's startup checks: app.json's, else the built-in one. The UI's commit is
    judged on /api/version whatever app.json says (it is how status and verify see drift)."""
    declared = deployer.spec.startup_checks(ptype)
    builtin = builtin_check(ptype)
    if ptype == WEB:
        return (builtin, *declared) if builtin else declared
    return declared or ((builtin,) if builtin else ())


def verify(deployer: Deployer, commit: str, timeout: float | None = None) -> None:
    """Each of the candidate's port types answers its checks (the UI /api/version with
    `commit`), and its units are up. A unit that died, an answer that is wrong and a request
    that hangs fail at once; a port nobody listens on yet is asked again until the
    inventory's verify_timeout (an app.json check: until its attempts are spent)."""
    timeout = deployer.app.verify_timeout if timeout is None else timeout
    deadline = time.monotonic() + timeout
    ports = type_ports(deployer, CANDIDATE)
    units = deployer.candidate_units
    for ptype, unit in zip(deployer.spec.port_types, units, strict=True):
        port = ports[ptype]

        def get(path: str, request_timeout: float, port: int = port) -> tuple[int, bytes]:
            return ssh_get(deployer, port, path, timeout=request_timeout)

        for check in checks_of(deployer, ptype):
            try:
                run_check(
                    deployer,
                    unit,
                    get,
                    check,
                    commit,
                    deadline,
                    timeout,
                    "on the candidate",
                    deployer.candidate_started,
                )
            except UnitFailed:
                raise
            except StagingError as failure:
                hint = elsewhere(deployer, CANDIDATE, ptype, port)
                raise UnitFailed(f"{failure}{hint}", unit) from None
    check_units_alive(deployer, units)
    check_loopback(deployer, CANDIDATE)


def _service(deployer: Deployer, unit: str) -> str:
    """`job-search-airflow-webserver-candidate@staging-4.service` ->
    `airflow-webserver-candidate`: what a progress line names."""
    return unit.split("@", 1)[0].removeprefix(f"{deployer.app.name}-")


def run_check(
    deployer: Deployer,
    unit: str,
    get: Getter,
    check: HealthCheck,
    commit: str,
    deadline: float,
    timeout: float,
    where: str,
    started: float | None = None,
) -> str:
    """One check of `unit`'s process through `get`; the path that passed. A built-in check is
    final on any answer and asks a port that does not answer yet again until `deadline`; an
    app.json check follows Dokku: `initialDelay` after the process `started` (time.monotonic();
    None: it starts now), then up to `attempts` requests `wait` apart, each within `timeout`."""
    if check.name != "built-in":
        return _attempts(deployer, unit, get, check, where, started)
    path = check.path or "/"
    next_unit_check = time.monotonic() + 0.3
    waiting = Waiting(deployer, f"{_service(deployer, unit)} {where}")
    while time.monotonic() < deadline:
        try:
            status, body = get(path, REQUEST_TIMEOUT)
        except TimeoutError:
            raise StagingError(
                f"{path} {where}: no answer within {REQUEST_TIMEOUT:.0f}s (it hangs)"
            ) from None
        except (OSError, paramiko.SSHException, http.client.HTTPException):
            # Not listening yet, or cut short while it starts (or already dead: the unit
            # check says which).
            if time.monotonic() >= next_unit_check:
                check_units_alive(deployer, [unit])
                next_unit_check = time.monotonic() + 0.5
            waiting.tick(f"waiting for {path} to answer")
            time.sleep(0.05)
            continue
        other = fallback_path(check, status)
        if other:
            path = other
            continue
        if path == "/api/version":
            verdict = judge_version(status, body, commit)
        else:
            verdict = judge_answer(
                HealthCheck(path=path, components=check.components, name=check.name), status, body
            )
        if verdict != OK:
            raise StagingError(f"{where.removeprefix('on the ')} {verdict}")
        return path
    raise StagingError(f"{path} {where}: no answer within {timeout:.0f}s")


def _attempts(
    deployer: Deployer,
    unit: str,
    get: Getter,
    check: HealthCheck,
    where: str,
    started: float | None = None,
) -> str:
    path = check.path or "/"
    # Dokku's initialDelay counts from the process's start, once: not again for the same
    # process asked through nginx after its own port answered.
    since = time.monotonic() if started is None else started
    time.sleep(max(0.0, since + check.initial_delay - time.monotonic()))
    # What the last answer said, if any came: more telling than a request cut short after it.
    answered: str | None = None
    problem = "no answer"
    waiting = Waiting(deployer, f"{_service(deployer, unit)} {where}")
    for attempt in range(1, check.attempts + 1):
        # An attempt lasts `wait`: a port that does not answer yet is asked again within it
        # (every NOT_LISTENING_POLL), so a process is seen the moment it listens, not up to
        # `wait` later; an answer, or a request that timed out, ends the attempt.
        window = time.monotonic() + check.wait
        while True:
            try:
                status, body = get(path, check.timeout)
                problem = answered = judge_answer(check, status, body)
            except TimeoutError:
                problem = f"no answer within {check.timeout:g}s"
            except (OSError, paramiko.SSHException, http.client.HTTPException) as exc:
                problem = f"no answer ({type(exc).__name__})"
                if time.monotonic() + NOT_LISTENING_POLL < window:
                    time.sleep(NOT_LISTENING_POLL)
                    continue
            break
        if problem == OK:
            return path
        check_units_alive(deployer, [unit])
        waiting.tick(f"{path}: {problem}, attempt {attempt} of {check.attempts}")
        if attempt < check.attempts:
            time.sleep(max(0.0, window - time.monotonic()))
    label = f" {check.name!r}" if check.name else ""
    raise StagingError(
        f"{path} {where}: app.json check{label} failed {check.attempts} attempts: "
        f"{answered or problem}"
    )


def _start_step(deployer: Deployer, run: Run) -> str:
    start(deployer, run.result.release)
    ports = deployer.slot.candidate_ports(deployer.host)
    shown = [
        f":{p}"
        for t, p in zip(("web", "airflow"), ports, strict=True)
        if t in deployer.spec.port_types
    ]
    return f"{run.result.release} on {' and '.join(shown)}"


def _verify_step(deployer: Deployer, run: Run) -> str:
    verify(deployer, run.result.commit)
    checks = [f"/api/version = {run.result.commit[:12]}"]
    for ptype in deployer.spec.port_types:
        checks += [c.describe() for c in checks_of(deployer, ptype) if c.path != "/api/version"]
    return f"{', '.join(checks)} ok (candidate ports)"


START_STEP = Step("candidate start", _start_step, changes=True)
VERIFY_STEP = Step("candidate verify", _verify_step, crash_point="deploy:candidate-running")
