"""The app's processes, the ecosystem's way: a `Procfile` (Heroku's `type: command` lines) and
`app.json` health checks (Dokku's format) read from the release, or, for a repository without
them, the inventory's `[app]` commands with the built-in checks. Pure: text in, typed spec out.

    web       the Campaign UI, on the slot's UI port, routed at `/`
    airflow   Airflow's web UI / API server, on the slot's Airflow port, routed at `/airflow/`
    release   run once per deploy before the candidate starts (migrations)
    any other a worker without a port (scheduler, dag-processor, triggerer), restarted last
"""

from staging_ops.processes.model import (
    AIRFLOW,
    PORT_TYPES,
    RELEASE,
    WEB,
    HealthCheck,
    ProcessSpec,
    SpecError,
)
from staging_ops.processes.spec import default_spec, spec_from_files, spec_from_json

__all__ = [
    "AIRFLOW",
    "PORT_TYPES",
    "RELEASE",
    "WEB",
    "HealthCheck",
    "ProcessSpec",
    "SpecError",
    "default_spec",
    "spec_from_files",
    "spec_from_json",
]
