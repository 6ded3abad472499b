"""Build a release's ProcessSpec: from its `Procfile` and `app.json` (read from the commit being
deployed), from the inventory's `[app]` commands for a repository without a Procfile, or back
from the `.process-spec.json` a deploy wrote into the release."""

from __future__ import annotations

import difflib
import json
import math
import re
from typing import Any

from staging_ops.inventory import App
from staging_ops.jsondoc import JSONObject
from staging_ops.processes.model import (
    AIRFLOW,
    CHECK_KINDS,
    PORT_TYPES,
    RELEASE,
    RESERVED,
    TYPE_NAME,
    WEB,
    HealthCheck,
    ProcessSpec,
    SpecError,
)

PROCFILE, APP_JSON = "Procfile", "app.json"
PROCFILE_LINE = re.compile(r"^([^:\s]+)[ \t]*:[ \t]*(.*)$")
# app.json's top-level keys (Heroku's schema plus Dokku's): only `healthchecks` is read, the
# rest belongs to other tools and is left alone; anything else is a typo.
APP_JSON_KEYS = frozenset(
    {
        "name", "description", "keywords", "website", "repository", "logo", "success_url",
        "scripts", "env", "formation", "image", "addons", "buildpacks", "environments",
        "stack", "cron", "healthchecks", "dokku",
    }
)  # fmt: skip
CHECK_KEYS = {
    "type": "kind",
    "name": "name",
    "path": "path",
    "attempts": "attempts",
    "timeout": "timeout",
    "wait": "wait",
    "initialDelay": "initial_delay",
    "content": "content",
    "uptime": "uptime",
    "x-components": "components",
}
# Dokku's keys that make no sense here: the port is the slot's, the scheme plain HTTP on
# loopback, and a failed check always fails the deploy.
UNSUPPORTED_CHECK_KEYS = frozenset({"command", "listening", "port", "scheme", "warn", "onFailure"})
MAX_SECONDS = 3600.0


def default_spec(app: App) -> ProcessSpec:
    """The inventory's `[app]` commands as process types, with the built-in checks."""
    commands = {
        WEB: app.ui_command,
        AIRFLOW: app.airflow_webserver_command,
        "scheduler": app.airflow_scheduler_command,
        RELEASE: app.migrate_command,
    }
    return ProcessSpec({t: runnable(c) for t, c in commands.items()}, source="inventory")


def runnable(command: str) -> str:
    """A command as the runner runs it: `{current}` and `{release}` (the inventory's
    templates) stand for the directory the instance runs from, and Airflow's per-process state
    is kept apart per instance (airflow_isolated)."""
    command = command.replace("{current}", "${RELEASE_DIR}").replace("{release}", "${RELEASE_DIR}")
    return airflow_isolated(command)


# The last simple command of a command line, when it is `[path/]airflow SUBCOMMAND …`.
_AIRFLOW_TAIL = re.compile(r"(?:^|[\s;&|(])(?:\S*/)?airflow\s+([a-z-]+)\b([^;&|]*)$")


def airflow_isolated(command: str) -> str:
    """Two instances of one slot (main and candidate) and ten slots on one droplet must not
    share what Airflow keeps per process by default: `airflow webserver` gets a pid file in its
    instance's TMPDIR (gunicorn's default, in AIRFLOW_HOME, makes the second one exit while the
    wrapper stays up), and the scheduler and triggerer do not start their log servers (they bind
    every address on one fixed port; logs are read from the slot's shared log folder)."""
    match = _AIRFLOW_TAIL.search(command)
    if not match:
        return command
    sub, args = match.group(1), f" {match.group(2)} "
    if sub == "webserver" and not re.search(r"\s(--pid|-P)[\s=]", args):
        return f'{command} --pid "$TMPDIR/airflow-webserver.pid"'
    if sub in ("scheduler", "triggerer") and "--skip-serve-logs" not in args:
        return f"{command} --skip-serve-logs"
    return command


def spec_from_files(procfile: str | None, app_json: str | None, app: App) -> ProcessSpec:
    """The spec of a commit from its Procfile and app.json texts (None: the file is absent).
    Raises SpecError naming the file and line for anything that cannot run."""
    if procfile is None:
        spec = default_spec(app)
    else:
        commands = parse_procfile(procfile)
        spec = ProcessSpec({t: runnable(c) for t, c in commands.items()}, source=PROCFILE)
    if app_json is None:
        return spec
    checks = parse_app_json(app_json, spec)
    return ProcessSpec(spec.commands, checks, spec.source)


BOM = "\ufeff"


def parse_procfile(text: str) -> dict[str, str]:
    """Heroku's Procfile: `type: command` a line, `#` comments and blank lines skipped."""
    commands: dict[str, str] = {}
    lines: dict[str, int] = {}
    # An editor's byte order mark is not part of the first type's name.
    text = text.removeprefix(BOM)
    if "\0" in text:
        raise SpecError(f"{PROCFILE}: contains a NUL byte")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r").strip()
        if not line or line.startswith("#"):
            continue
        where = f"{PROCFILE} line {number}"
        match = PROCFILE_LINE.match(line)
        if not match:
            raise SpecError(f"{where}: not `type: command`: {_shown(line)}")
        kind, command = match.group(1), match.group(2).strip()
        _check_type_name(kind, where)
        if kind in commands:
            raise SpecError(f"{where}: process type {kind!r} again (line {lines[kind]})")
        if not command:
            raise SpecError(f"{where}: process type {kind!r} has no command")
        if any(ord(c) < 32 and c != "\t" for c in command):
            raise SpecError(f"{where}: the command of {kind!r} has a control character")
        commands[kind] = command
        lines[kind] = number
    if WEB not in commands:
        raise SpecError(f"{PROCFILE}: no `web` process (the Campaign UI, served at /)")
    return commands


def _check_type_name(kind: str, where: str) -> None:
    if not TYPE_NAME.match(kind):
        raise SpecError(
            f"{where}: process type {_shown(kind)}: lowercase letters, digits, '-' and '_', "
            "starting with a letter, at most 30"
        )
    if kind in RESERVED or kind.endswith("-candidate"):
        raise SpecError(f"{where}: process type {kind!r} is reserved (it names a unit of ours)")


def parse_app_json(text: str, spec: ProcessSpec) -> dict[str, tuple[HealthCheck, ...]]:
    """app.json's `healthchecks` (Dokku's format) for the spec's types."""
    try:
        data = json.loads(text.removeprefix(BOM))
    except json.JSONDecodeError as exc:
        raise SpecError(f"{APP_JSON} line {exc.lineno}: malformed JSON: {exc.msg}") from None
    except RecursionError:
        raise SpecError(f"{APP_JSON}: nested too deeply") from None
    if not isinstance(data, dict):
        raise SpecError(f"{APP_JSON}: must be a JSON object")
    _no_unknown(data, APP_JSON_KEYS, APP_JSON)
    raw = data.get("healthchecks", {})
    if not isinstance(raw, dict):
        raise SpecError(f"{APP_JSON}: healthchecks: must be an object of process types")
    checks: dict[str, tuple[HealthCheck, ...]] = {}
    for kind, entries in raw.items():
        where = f"{APP_JSON}: healthchecks.{kind}"
        if kind not in spec.types:
            declared = ", ".join(spec.types)
            raise SpecError(f"{where}: no such process type (declared: {declared})")
        if not isinstance(entries, list):
            raise SpecError(f"{where}: must be a list of checks")
        checks[kind] = tuple(
            _check(entry, f"{where}[{n}]", kind in PORT_TYPES) for n, entry in enumerate(entries)
        )
    return checks


def _check(raw: Any, where: str, has_port: bool) -> HealthCheck:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: must be an object")
    for key in raw:
        if key in UNSUPPORTED_CHECK_KEYS:
            raise SpecError(f"{where}: {key!r} is not supported by staging-ops")
    _no_unknown(raw, frozenset(CHECK_KEYS), where)
    values: JSONObject = {}
    for key, value in raw.items():
        values[CHECK_KEYS[key]] = _check_value(key, value, where)
    check = HealthCheck(**values)
    if check.kind not in CHECK_KINDS:
        raise SpecError(f"{where}: type {check.kind!r}: one of {', '.join(CHECK_KINDS)}")
    if check.path is not None and not has_port:
        raise SpecError(f"{where}: a worker has no port: give it an `uptime` check, not a path")
    if check.path is None and check.uptime is None:
        raise SpecError(f"{where}: needs a `path` (or, for a worker, an `uptime`)")
    return check


def _check_value(key: str, value: Any, where: str) -> Any:
    if key in ("type", "name", "content"):
        if not isinstance(value, str) or "\0" in value:
            raise SpecError(f"{where}: {key!r} must be a string")
        return value
    if key == "path":
        ok = isinstance(value, str) and value.startswith("/") and len(value) <= 2000
        if not ok or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
            raise SpecError(f"{where}: 'path' must be a URL path starting with '/'")
        return value
    if key == "attempts":
        if type(value) is not int or not 1 <= value <= 1000:
            raise SpecError(f"{where}: 'attempts' must be a whole number from 1 to 1000")
        return value
    if key == "x-components":
        if value == "*":
            return ("*",)
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v for v in value)
        ):
            raise SpecError(f"{where}: 'x-components' must be \"*\" or a list of names")
        return tuple(value)
    # timeout, wait, initialDelay, uptime: seconds
    if type(value) not in (int, float) or not math.isfinite(value):
        raise SpecError(f"{where}: {key!r} must be a number of seconds")
    low = 0.1 if key == "timeout" else 0.0
    if not low <= value <= MAX_SECONDS:
        raise SpecError(f"{where}: {key!r} must be from {low:g} to {MAX_SECONDS:g} seconds")
    return float(value)


def _no_unknown(raw: JSONObject, known: frozenset[str], where: str) -> None:
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(f"{where}: unknown key {_shown(str(key))}{hint}")


def _shown(text: str, limit: int = 60) -> str:
    """Text from the repository as it may appear in one line of output."""
    shown = text if len(text) <= limit else text[:limit] + "…"
    return repr(shown)


def spec_from_json(text: str | None, app: App) -> ProcessSpec:
    """A release's spec as its deploy wrote it (`.process-spec.json`); a release from before
    there was one (or an unreadable one) runs the inventory's commands."""
    if not text:
        return default_spec(app)
    try:
        data = json.loads(text.removeprefix(BOM))
        commands = {str(k): str(v) for k, v in data["processes"].items()}
        checks = {
            str(t): tuple(_from_json_check(c) for c in cs) for t, cs in data["healthchecks"].items()
        }
        return ProcessSpec(commands, checks, str(data.get("source", "inventory")))
    except (ValueError, KeyError, TypeError, AttributeError, SpecError):
        return default_spec(app)


def _from_json_check(raw: JSONObject) -> HealthCheck:
    values = {CHECK_KEYS[k]: _check_value(k, v, "spec") for k, v in raw.items()}
    return HealthCheck(**values)
