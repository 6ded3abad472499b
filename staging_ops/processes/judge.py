"""Judging a health check's answer (pure): the status, Dokku's `content`, and our
`x-components` over a JSON health answer such as Airflow's (`{"metadatabase": {"status":
"healthy"}, "scheduler": {"status": "unhealthy", …}}`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from staging_ops.processes.model import AIRFLOW, WEB, HealthCheck

OK = "ok"
HEALTHY = "healthy"
# Airflow 3 moved its health endpoint; its webserver answers the 2.x path 404.
AIRFLOW2_HEALTH = "/airflow/health"
AIRFLOW3_HEALTH = "/airflow/api/v2/monitor/health"
VERSION_PATH = "/api/version"


def builtin_check(ptype: str) -> HealthCheck | None:
    """The check a port type gets when app.json gives it none: the UI's /api/version (its
    commit is judged by the deploy), Airflow's health answer with a healthy metadatabase (the
    scheduler is judged as a worker, after its restart)."""
    if ptype == WEB:
        return HealthCheck(path=VERSION_PATH, name="built-in")
    if ptype == AIRFLOW:
        return HealthCheck(path=AIRFLOW2_HEALTH, name="built-in", components=("metadatabase",))
    return None


def airflow_fallback(path: str | None, status: int) -> str | None:
    """Airflow's second health path when the first answered `status`: Airflow 3 moved it,
    and answers the 2.x one 404. The one place deploy's checks and status learn it."""
    return AIRFLOW3_HEALTH if path == AIRFLOW2_HEALTH and status == 404 else None


def fallback_path(check: HealthCheck, status: int) -> str | None:
    """The built-in Airflow check's second path (airflow_fallback); an app.json check asks
    only the path it names."""
    return airflow_fallback(check.path, status) if check.name == "built-in" else None


def judge_answer(check: HealthCheck, status: int, body: bytes) -> str:
    """OK, or what is wrong with the answer, in a few words."""
    if not 200 <= status < 300:
        return f"{check.path} answers HTTP {status}"
    if check.content is not None and check.content.encode() not in body:
        return f"{check.path} answers without {check.content!r}"
    if check.components:
        return judge_components(check, body)
    return OK


def judge_components(check: HealthCheck, body: bytes) -> str:
    """Each named component's `status` is `healthy` (`*`: every component that has one). A
    built-in check judges only the components the answer has (Airflow 3 has no `scheduler`
    entry before it ever ran one, Airflow 2 no `dag_processor`)."""
    builtin = check.name == "built-in"
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        # The built-in check asks an app that is not Airflow's for nothing but its 200.
        return OK if builtin else f"{check.path} does not answer JSON"
    if not isinstance(data, dict):
        return OK if builtin else f"{check.path} does not answer a JSON object"
    names = check.components
    if names == ("*",):
        names = tuple(k for k, v in data.items() if isinstance(v, dict) and "status" in v)
    for name in names:
        part = data.get(name)
        if part is None and builtin:
            continue
        status = part.get("status") if isinstance(part, dict) else None
        if status != HEALTHY:
            return f"{check.path}: {name} is {status or 'missing'}"
    return OK


def heartbeat_key(component: str) -> str:
    """Where Airflow's health answer keeps a component's last heartbeat time:
    `latest_scheduler_heartbeat`, `latest_dag_processor_heartbeat`, `latest_triggerer_heartbeat`."""
    return f"latest_{component}_heartbeat"


def judge_heartbeat(component: str, answer: object, since: datetime) -> str | None:
    """Whether a worker restarted at `since` (the droplet's clock, as Airflow's heartbeats
    are) has shown life in the health answer (`answer`, the parsed JSON): None when its
    component beat at or after `since`, or, where the answer gives no heartbeat time, reads
    `healthy`; also None when the answer does not report the component at all (an app without
    a health JSON, a worker Airflow does not know): nothing to judge. Else what is missing.

    The time decides where there is one: Airflow calls a scheduler `healthy` while its last
    heartbeat is under 30 s old, so right after a restart the *old* process's heartbeat still
    reads healthy, and only a time after the restart proves the new one runs."""
    part = answer.get(component) if isinstance(answer, dict) else None
    if not isinstance(part, dict):
        return None
    key = heartbeat_key(component)
    raw = part.get(key)
    if raw is None:
        status = part.get("status")
        if status == HEALTHY:
            return None
        if not status:
            return f"{component} has neither a status nor a heartbeat"
        return f"{component} is {status} and has no heartbeat"
    beat = _time(raw)
    if beat is None:
        return f"{component}'s {key} {raw!r} is not a time"
    if beat < since:
        return (
            f"{component} has not beaten since its restart (last heartbeat "
            f"{beat:%H:%M:%S}, restarted {since:%H:%M:%S} UTC)"
        )
    return None


def _time(value: object) -> datetime | None:
    """An ISO 8601 time (Airflow's: `2026-12-04T20:42:35.793558+00:00`), naive ones as UTC."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
