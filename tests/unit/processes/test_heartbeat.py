"""A worker's heartbeat after its restart, judged from Airflow's health answer (processes.judge,
pure): the answers are Airflow 2's and 3's own, as the real example app's README records them.
The heartbeat time decides where the answer has one (an old process's heartbeat still reads
`healthy` for 30 s); `healthy` counts only where there is no time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from staging_ops.processes.judge import heartbeat_key, judge_heartbeat

RESTARTED = datetime(2026, 12, 4, 20, 42, 30, tzinfo=UTC)
BEFORE = "2026-12-04T20:42:25.793558+00:00"  # the old process's last heartbeat
AFTER = "2026-12-04T20:42:35.793558+00:00"
# Airflow 2 `/health` and Airflow 3 `/api/v2/monitor/health` before any worker ran.
COLD = {
    "metadatabase": {"status": "healthy"},
    "scheduler": {"status": "unhealthy", "latest_scheduler_heartbeat": None},
    "triggerer": {"status": None, "latest_triggerer_heartbeat": None},
    "dag_processor": {"status": None, "latest_dag_processor_heartbeat": None},
}


def beat(component: str, when: str | None, status: str | None = "healthy") -> dict:
    return {**COLD, component: {"status": status, heartbeat_key(component): when}}


@pytest.mark.parametrize(
    ("component", "answer", "problem"),
    [
        # A new heartbeat: the new process runs its job loop.
        ("scheduler", beat("scheduler", AFTER), None),
        ("dag_processor", beat("dag_processor", AFTER), None),
        ("triggerer", beat("triggerer", AFTER), None),
        # Exactly at the restart (same clock: the droplet's) counts.
        ("scheduler", beat("scheduler", "2026-12-04T20:42:30+00:00"), None),
        # `Z` and a naive time (taken as UTC) are read too.
        ("scheduler", beat("scheduler", "2026-12-04T20:42:35Z"), None),
        ("scheduler", beat("scheduler", "2026-12-04T20:42:35.1"), None),
        # The old process's heartbeat reads healthy still: the time says it is not the new one.
        (
            "scheduler",
            beat("scheduler", BEFORE),
            "scheduler has not beaten since its restart (last heartbeat 20:42:25, "
            "restarted 20:42:30 UTC)",
        ),
        (
            "dag_processor",
            beat("dag_processor", BEFORE, "unhealthy"),
            "dag_processor has not beaten since its restart (last heartbeat 20:42:25, "
            "restarted 20:42:30 UTC)",
        ),
        # Never beat: Airflow 2 says unhealthy, a triggerer that never ran null.
        ("scheduler", COLD, "scheduler is unhealthy and has no heartbeat"),
        ("triggerer", COLD, "triggerer has neither a status nor a heartbeat"),
        # No heartbeat time given: the status decides.
        ("scheduler", {"scheduler": {"status": "healthy"}}, None),
        (
            "scheduler",
            {"scheduler": {"status": "unhealthy"}},
            "scheduler is unhealthy and has no heartbeat",
        ),
        (
            "scheduler",
            beat("scheduler", "yesterday"),
            "scheduler's latest_scheduler_heartbeat 'yesterday' is not a time",
        ),
        (
            "scheduler",
            beat("scheduler", 1733344955),  # type: ignore[arg-type]
            "scheduler's latest_scheduler_heartbeat 1733344955 is not a time",
        ),
        # Nothing to judge: the answer does not report the component, or is not Airflow's.
        ("heartbeat", COLD, None),
        ("scheduler", {"status": "healthy", "slot": "staging-1"}, None),
        ("scheduler", {"metadatabase": {"status": "healthy"}, "scheduler": "up"}, None),
        ("scheduler", None, None),
        ("scheduler", ["scheduler"], None),
    ],
)
def test_a_worker_must_have_beaten_since_its_restart(component, answer, problem):
    assert judge_heartbeat(component, answer, RESTARTED) == problem
