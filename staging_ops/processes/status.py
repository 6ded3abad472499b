"""Each process of a live slot judged (pure), for `status`, `verify` and the dashboard: its
unit's state as systemd says it (ActiveState, SubState, NRestarts) and, for a process whose
component Airflow's health answer reports, that component's status. The answer is read, not
only its status code: Airflow 2's `/health` and Airflow 3's `/api/v2/monitor/health` both
answer 200 while the scheduler is `unhealthy`.

    up          the unit is active (and its component, where reported, healthy)
    down        the unit is not active (failed, inactive, gone)
    starting    the unit is activating
    restarting  it died and waits for systemd's restart, or systemd restarted it since it was
                started (the deploy's restart, or an operator's)
    unhealthy   the unit is active, but its health answer or its component is not healthy
    unknown     systemd said nothing of the unit
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from staging_ops.jsondoc import JSONObject
from staging_ops.processes.judge import HEALTHY
from staging_ops.processes.model import AIRFLOW, WEB, ProcessSpec

UP, DOWN, STARTING, RESTARTING, UNHEALTHY, UNKNOWN = (
    "up",
    "down",
    "starting",
    "restarting",
    "unhealthy",
    "unknown",
)
# What the airflow process itself answers for when app.json names no component: the
# metadatabase (the scheduler, dag processor and triggerer are judged as the workers they are).
AIRFLOW_COMPONENTS = ("metadatabase",)


@dataclass(frozen=True)
class UnitState:
    """What `systemctl show -p ActiveState -p SubState -p NRestarts` says of one unit.
    `restarts` is None where systemd does not count them (the sandbox's stand-in)."""

    active: str
    sub: str = ""
    restarts: int | None = None

    @classmethod
    def from_props(cls, props: dict[str, str]) -> UnitState | None:
        """From one block of `systemctl show`'s KEY=VALUE lines; None when it names no state."""
        active = props.get("ActiveState", "")
        if not active:
            return None
        count = props.get("NRestarts", "")
        return cls(active, props.get("SubState", ""), int(count) if count.isdigit() else None)


@dataclass(frozen=True)
class HealthAnswer:
    """One health answer through nginx: the path asked, whether it answered 200, and its body
    as JSON when it is a JSON object (None: not JSON, or no answer at all)."""

    path: str
    ok: bool
    data: JSONObject | None = None

    @classmethod
    def from_body(cls, path: str, status: int, body: bytes) -> HealthAnswer:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            data = None
        return cls(path, status == 200, data if isinstance(data, dict) else None)

    def component(self, name: str) -> tuple[bool, str | None]:
        """(whether the answer reports component `name`, its status). Airflow reports a
        component that never ran with `"status": null`."""
        part = (self.data or {}).get(name)
        if not isinstance(part, dict) or "status" not in part:
            return False, None
        status = part["status"]
        return True, status if isinstance(status, str) else None

    def as_json(self) -> JSONObject:
        """The components and their statuses, as status --json carries them."""
        components = {}
        for name in self.data or {}:
            reported, status = self.component(name)
            if reported:
                components[name] = status
        return {"path": self.path, "ok": self.ok, "components": components}


def component_name(ptype: str) -> str:
    """The component of Airflow's health answer a worker type answers for: the answer spells
    with underscores what a Procfile spells with dashes (`dag-processor` -> `dag_processor`)."""
    return ptype.replace("-", "_")


def airflow_components(spec: ProcessSpec) -> tuple[str, ...]:
    """The components the airflow process answers for: app.json's `x-components` of its checks
    (`*`: every component), else the metadatabase."""
    named = tuple(c for check in spec.checks.get(AIRFLOW, ()) for c in check.components)
    return named or AIRFLOW_COMPONENTS


def judge_unit(state: UnitState | None) -> tuple[str, str | None]:
    """(state, what is wrong or None) from the unit's systemd state alone."""
    if state is None:
        return UNKNOWN, "systemd said nothing of it"
    if state.sub == "auto-restart":
        return RESTARTING, "it died and waits to be restarted"
    if state.active == "activating":
        return STARTING, f"systemd: {state.active} ({state.sub})" if state.sub else None
    if state.active != "active":
        return DOWN, f"systemd: {state.active}" + (f" ({state.sub})" if state.sub else "")
    if state.restarts:
        times = "once" if state.restarts == 1 else f"{state.restarts} times"
        return RESTARTING, f"systemd restarted it {times} since it was started"
    return UP, None


def judge_health(
    ptype: str,
    spec: ProcessSpec,
    ui_up: bool | None,
    airflow: HealthAnswer | None,
) -> str | None:
    """What is wrong with an active process's health, or None: the UI's /api/version for web,
    Airflow's answer and its components for airflow, the worker's own component (where the
    answer reports it) for a worker. Nothing checked (no probe ran) is nothing wrong."""
    if ptype == WEB:
        return "/api/version does not answer 200 through nginx" if ui_up is False else None
    if airflow is None:
        return None
    if ptype == AIRFLOW:
        if not airflow.ok:
            return f"{airflow.path} does not answer 200 through nginx"
        names = airflow_components(spec)
        if names == ("*",):
            names = tuple(airflow.as_json()["components"])
        for name in names:
            reported, status = airflow.component(name)
            # A component the answer does not have is not judged (Airflow 3 has none of a
            # scheduler that never ran): as the deploy's built-in check does.
            if reported and status != HEALTHY:
                return f"{airflow.path}: {name} is {status or 'not reported'}"
        return None
    name = component_name(ptype)
    reported, status = airflow.component(name)
    if reported and status != HEALTHY:
        return f"{airflow.path}: {name} is {status or 'not reported (no heartbeat)'}"
    return None


@dataclass(frozen=True)
class ProcessVerdict:
    """One process judged: its state (up, down, ...), its unit and what is wrong, if anything."""

    state: str
    unit: str
    problem: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"state": self.state, "unit": self.unit, "problem": self.problem}


# Each long-running type of a release, judged, in the order the deploy starts them.
Processes = dict[str, ProcessVerdict]


def processes_json(processes: Processes | None) -> dict[str, dict[str, str | None]] | None:
    """{type: {"state", "unit", "problem"}}, as status --json, verify --json and the dashboard
    carry it (None: not read)."""
    if processes is None:
        return None
    return {ptype: judged.as_json() for ptype, judged in processes.items()}


def judge_processes(
    spec: ProcessSpec,
    units: dict[str, str],
    states: dict[str, UnitState],
    *,
    ui_up: bool | None = None,
    airflow: HealthAnswer | None = None,
) -> Processes:
    """Every long-running type `spec` declares, judged, web and airflow first, then the
    workers (as the deploy starts them). `units` maps each type to its unit, `states` each
    unit to what systemd said; `ui_up` and `airflow` are the probes through nginx (None: not
    probed)."""
    judged: Processes = {}
    for ptype in (*spec.port_types, *spec.workers):
        unit = units[ptype]
        state, problem = judge_unit(states.get(unit))
        if state == UP:
            problem = judge_health(ptype, spec, ui_up, airflow)
            if problem:
                state = UNHEALTHY
        judged[ptype] = ProcessVerdict(state, unit, problem)
    return judged


def process_lines(processes: Processes) -> list[str]:
    """One line per process that is not up: `scheduler (job-search-airflow-scheduler@staging-4
    .service) is down (systemd: failed)`."""
    lines = []
    for ptype, judged in processes.items():
        if judged.state == UP:
            continue
        detail = f" ({judged.problem})" if judged.problem else ""
        lines.append(f"{ptype} ({judged.unit}) is {judged.state}{detail}")
    return lines


def compact(processes: Processes | None) -> str | None:
    """status's processes column: `web✓ airflow✓ scheduler✗`; a state other than up or
    down is spelt out (`scheduler:unhealthy`)."""
    if not processes:
        return None
    marks = {UP: "✓", DOWN: "✗"}
    return " ".join(
        f"{t}{marks[j.state]}" if j.state in marks else f"{t}:{j.state}"
        for t, j in processes.items()
    )
