"""Each process of a slot judged from its unit's systemd state and Airflow's health JSON
(processes.status, pure): the answers are Airflow's own, as the real example app's README
records them (Airflow 2 and 3 answer 200 whatever the components say)."""

from __future__ import annotations

import json

import pytest

from staging_ops.processes import HealthCheck, ProcessSpec
from staging_ops.processes.status import (
    HealthAnswer,
    ProcessVerdict,
    UnitState,
    compact,
    judge_processes,
    judge_unit,
    process_lines,
    processes_json,
)
from staging_ops.remote.live import parse_live

A2 = "/airflow/health"
A3 = "/airflow/api/v2/monitor/health"
# Airflow 2, before any scheduler ran (README "Health answers").
AIRFLOW2_COLD = {
    "dag_processor": {"latest_dag_processor_heartbeat": None, "status": None},
    "metadatabase": {"status": "healthy"},
    "scheduler": {"latest_scheduler_heartbeat": None, "status": "unhealthy"},
    "triggerer": {"latest_triggerer_heartbeat": None, "status": None},
}
HEARTBEAT = "2026-12-04T20:42:35.793558+00:00"


def answer(path: str = A2, status: int = 200, **components: str | None) -> HealthAnswer:
    data = {"metadatabase": {"status": "healthy"}}
    data.update({name: {"status": value} for name, value in components.items()})
    return HealthAnswer.from_body(path, status, json.dumps(data).encode())


AIRFLOW2 = ProcessSpec({"web": "w", "airflow": "a", "scheduler": "s", "release": "m"})
AIRFLOW3 = ProcessSpec(
    {"web": "w", "airflow": "a", "release": "m", "scheduler": "s", "dag-processor": "d"},
    source="Procfile",
)
UNITS2 = {t: f"job-search-{t}@staging-4.service" for t in AIRFLOW2.types}
UNITS3 = {t: f"job-search-worker@staging-4:{t}.service" for t in AIRFLOW3.types}
ACTIVE = UnitState("active", "running", 0)


def all_active(units: dict[str, str]) -> dict[str, UnitState]:
    return {unit: ACTIVE for unit in units.values()}


def states(judged: dict) -> dict[str, str]:
    return {t: j.state for t, j in judged.items()}


def test_all_up_when_every_unit_is_active_and_every_component_healthy():
    airflow = answer(scheduler="healthy")
    judged = judge_processes(AIRFLOW2, UNITS2, all_active(UNITS2), ui_up=True, airflow=airflow)
    assert states(judged) == {"web": "up", "airflow": "up", "scheduler": "up"}
    assert judged["scheduler"] == ProcessVerdict("up", UNITS2["scheduler"])
    # status --json, verify --json and the dashboard carry it as this object.
    assert processes_json(judged)["scheduler"] == {
        "state": "up",
        "unit": UNITS2["scheduler"],
        "problem": None,
    }
    assert processes_json(None) is None
    assert process_lines(judged) == []
    assert compact(judged) == "web✓ airflow✓ scheduler✓"


def test_a_200_whose_json_says_the_scheduler_is_unhealthy_is_an_unhealthy_scheduler():
    cold = HealthAnswer.from_body(A2, 200, json.dumps(AIRFLOW2_COLD).encode())
    judged = judge_processes(AIRFLOW2, UNITS2, all_active(UNITS2), ui_up=True, airflow=cold)
    # The webserver itself answers and its metadatabase is healthy: airflow is up.
    assert states(judged) == {"web": "up", "airflow": "up", "scheduler": "unhealthy"}
    assert process_lines(judged) == [
        f"scheduler ({UNITS2['scheduler']}) is unhealthy (/airflow/health: scheduler is unhealthy)"
    ]
    assert compact(judged) == "web✓ airflow✓ scheduler:unhealthy"


def test_airflow3_dag_processor_is_judged_by_its_underscored_component():
    sick = answer(A3, scheduler="healthy", dag_processor="unhealthy")
    judged = judge_processes(AIRFLOW3, UNITS3, all_active(UNITS3), ui_up=True, airflow=sick)
    assert states(judged) == {
        "web": "up", "airflow": "up", "scheduler": "up", "dag-processor": "unhealthy"
    }  # fmt: skip
    assert judged["dag-processor"].problem == f"{A3}: dag_processor is unhealthy"
    # A declared worker whose component never reported a heartbeat (status null) is not up.
    never = answer(A3, scheduler="healthy", dag_processor=None)
    judged = judge_processes(AIRFLOW3, UNITS3, all_active(UNITS3), airflow=never)
    assert judged["dag-processor"].state == "unhealthy"
    assert "dag_processor is not reported" in judged["dag-processor"].problem


def test_a_worker_the_answer_does_not_report_is_judged_by_its_unit_alone():
    spec = ProcessSpec({"web": "w", "heartbeat": "h"}, source="Procfile")
    units = {"web": "u-web", "heartbeat": "u-hb"}
    judged = judge_processes(spec, units, {"u-web": ACTIVE, "u-hb": ACTIVE}, airflow=answer())
    assert states(judged) == {"web": "up", "heartbeat": "up"}


@pytest.mark.parametrize(
    ("state", "expected", "problem"),
    [
        (UnitState("failed", "failed", 0), "down", "systemd: failed (failed)"),
        (UnitState("inactive", "dead"), "down", "systemd: inactive (dead)"),
        (UnitState("activating", "auto-restart", 3), "restarting", "it died and waits"),
        (UnitState("active", "running", 2), "restarting", "restarted it 2 times"),
        (UnitState("active", "running", 1), "restarting", "restarted it once"),
        (UnitState("activating", "start"), "starting", "systemd: activating (start)"),
        (UnitState("active", "running", None), "up", None),  # the stand-in counts nothing
        (None, "unknown", "systemd said nothing of it"),
    ],
)
def test_the_unit_state_alone(state, expected, problem):
    judged, why = judge_unit(state)
    assert judged == expected
    assert (why is None) if problem is None else (problem in why)


def test_a_unit_that_is_down_is_down_whatever_its_component_says():
    units = all_active(UNITS2)
    units[UNITS2["scheduler"]] = UnitState("failed", "failed", 0)
    judged = judge_processes(AIRFLOW2, UNITS2, units, airflow=answer(scheduler="healthy"))
    assert process_lines(judged) == [
        f"scheduler ({UNITS2['scheduler']}) is down (systemd: failed (failed))"
    ]
    assert compact(judged) == "web✓ airflow✓ scheduler✗"


def test_port_types_are_unhealthy_when_their_probe_through_nginx_fails():
    down = HealthAnswer(A2, ok=False)
    judged = judge_processes(AIRFLOW2, UNITS2, all_active(UNITS2), ui_up=False, airflow=down)
    assert states(judged) == {"web": "unhealthy", "airflow": "unhealthy", "scheduler": "up"}
    assert judged["airflow"].problem == "/airflow/health does not answer 200 through nginx"
    # An unhealthy metadatabase is the airflow process's own.
    sick_db = HealthAnswer.from_body(A2, 200, b'{"metadatabase": {"status": "unhealthy"}}')
    judged = judge_processes(AIRFLOW2, UNITS2, all_active(UNITS2), airflow=sick_db)
    assert judged["airflow"].problem == "/airflow/health: metadatabase is unhealthy"
    # Nothing probed (no health asked for): judged by the units alone.
    assert states(judge_processes(AIRFLOW2, UNITS2, all_active(UNITS2))) == {
        "web": "up", "airflow": "up", "scheduler": "up"
    }  # fmt: skip


def test_app_json_components_name_what_the_airflow_process_answers_for():
    spec = ProcessSpec(
        AIRFLOW2.commands,
        {"airflow": (HealthCheck(path=A2, components=("metadatabase", "triggerer")),)},
    )
    judged = judge_processes(spec, UNITS2, all_active(UNITS2), airflow=answer(triggerer=None))
    assert judged["airflow"].problem == "/airflow/health: triggerer is not reported"


def test_an_answer_that_is_not_json_judges_no_component():
    plain = HealthAnswer.from_body(A2, 200, b"ok")
    assert plain.data is None and plain.as_json() == {"path": A2, "ok": True, "components": {}}
    judged = judge_processes(AIRFLOW2, UNITS2, all_active(UNITS2), airflow=plain)
    assert states(judged)["airflow"] == "up" and states(judged)["scheduler"] == "up"
    assert HealthAnswer.from_body(A2, 200, b"[1]").data is None


def test_status_live_answer_carries_the_spec_and_the_units_states():
    spec = json.dumps({"source": "Procfile", "processes": {"web": "w", "hb": "h"}})
    release = {"target": "releases/r1", "commit": "abc", "branch": "main", "verified": 1}
    release |= {
        "spec": spec,
        "units": [
            ["web", "job-search-ui@staging-1.service"],
            ["hb", "job-search-worker@staging-1:hb.service"],
        ],
    }
    shown = [
        {"ActiveState": "active", "SubState": "running", "NRestarts": "0"},
        {"ActiveState": "failed", "SubState": "failed", "NRestarts": "4"},
    ]
    out = json.dumps({"slots": [release, None], "units": shown}) + "\n"
    found, processes = parse_live(out, 2)
    assert [f.release for f in found] == ["r1", None]
    assert processes[1] is None
    assert processes[0] is not None
    assert processes[0].spec_text == spec
    assert processes[0].states == {
        "job-search-ui@staging-1.service": UnitState("active", "running", 0),
        "job-search-worker@staging-1:hb.service": UnitState("failed", "failed", 4),
    }
