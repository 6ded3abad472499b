"""The typed process spec of one release: its process types and their commands, and each type's
health checks (Dokku's app.json fields). Built by spec.py; written into the release as JSON
(`.process-spec.json`) so that a rollback, `status` and provision-all read what that release
declared, not what the newest one does."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from staging_ops.errors import StagingError
from staging_ops.jsondoc import JSONObject

WEB, AIRFLOW, RELEASE = "web", "airflow", "release"
# Process types with a port (the slot's UI and Airflow ports), a candidate each, routed by nginx.
PORT_TYPES = (WEB, AIRFLOW)
# Heroku's process type names, kept to what a systemd unit name and a log line carry as is.
TYPE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,29}$")
# Names that would read as one of our units' own names (`invoke logs --service ui`, the
# candidates) rather than a type of the app's.
RESERVED = frozenset({"ui", "airflow-webserver", "airflow-scheduler", "candidate", "airflow-admin"})
CHECK_KINDS = ("startup", "liveness", "readiness")


class SpecError(StagingError):
    """A Procfile or app.json that cannot be run: one line naming the file and where in it.
    The deploy fails before anything starts (exit 1)."""


@dataclass(frozen=True)
class HealthCheck:
    """One of Dokku's app.json `healthchecks` of a process type. `components` is our extension
    (`x-components`): in a JSON answer, each named component's `status` must be `healthy`
    (`*`: every component that has a status)."""

    path: str | None = None
    kind: str = "startup"
    name: str = ""
    attempts: int = 5
    timeout: float = 5.0
    wait: float = 5.0
    initial_delay: float = 0.0
    content: str | None = None
    uptime: float | None = None
    components: tuple[str, ...] = ()

    def as_json(self) -> JSONObject:
        out: JSONObject = {
            "type": self.kind,
            "attempts": self.attempts,
            "timeout": self.timeout,
            "wait": self.wait,
            "initialDelay": self.initial_delay,
        }
        optional = {
            "name": self.name or None,
            "path": self.path,
            "content": self.content,
            "uptime": self.uptime,
            "x-components": list(self.components) or None,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    def describe(self) -> str:
        what = self.path or f"up {self.uptime:g}s"
        if self.components:
            what += f" ({', '.join(self.components)} healthy)"
        return what


@dataclass(frozen=True)
class ProcessSpec:
    """What one release runs. `commands` maps each type to its command line (in Procfile
    order, `release` included); `checks` the types that declare health checks; `source` says
    where it came from (`Procfile` or `inventory`)."""

    commands: dict[str, str]
    checks: dict[str, tuple[HealthCheck, ...]] = field(default_factory=dict)
    source: str = "inventory"

    @property
    def types(self) -> tuple[str, ...]:
        """The long-running process types (every type but `release`), in declared order."""
        return tuple(t for t in self.commands if t != RELEASE)

    @property
    def port_types(self) -> tuple[str, ...]:
        """The declared types with a port and a candidate: `web`, then `airflow` if declared."""
        return tuple(t for t in PORT_TYPES if t in self.commands)

    @property
    def workers(self) -> tuple[str, ...]:
        """The declared types without a port, restarted last, without a candidate."""
        return tuple(t for t in self.types if t not in PORT_TYPES)

    @property
    def release_command(self) -> str | None:
        return self.commands.get(RELEASE)

    def startup_checks(self, kind: str) -> tuple[HealthCheck, ...]:
        return tuple(c for c in self.checks.get(kind, ()) if c.kind == "startup")

    def as_json(self) -> JSONObject:
        return {
            "source": self.source,
            "processes": dict(self.commands),
            "healthchecks": {t: [c.as_json() for c in cs] for t, cs in self.checks.items()},
        }

    def process_table(self) -> str:
        """The runner's table (run-process.sh): `type<TAB>command` a line."""
        return "".join(f"{t}\t{c}\n" for t, c in self.commands.items())
