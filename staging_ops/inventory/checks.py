"""One check per field kind (model.Kind): a value from the TOML in, the model's value out, or
Invalid with the problem. Pure; load.py adds the file, host or slot, and field to the message.

Several values end up in nginx directives, systemd units, env files or shell commands, so the
patterns refuse anything (`;`, `{`, spaces, newlines) that could break out of them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from staging_ops.inventory.model import ACCESS_MODES, ROLES, Kind


class Invalid(ValueError):
    """The problem with a value, worded for the operator: '... must be an integer'."""

    @property
    def problem(self) -> str:
        return str(self.args[0])


# One DNS label: letters, digits, inner hyphens.
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PG_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_IDENTIFIER = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Commands run as `sh -c` by bin/run-process (never pasted into a unit): one line, no tab (the
# process table's separator), no other control character.
_COMMAND = re.compile(r"^[^\x00-\x1f\x7f]+$")
_PATH = re.compile(r"^/[A-Za-z0-9_./@+-]*$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]*$")
_ADDRESS = re.compile(r"^[A-Za-z0-9.:-]+$")
_SCHEME = re.compile(r"^https?$")
_HTTPS_URL = re.compile(r"^https://[A-Za-z0-9.:_~%/-]+$")
# No '@' (user:password in a URL would be printed with the deploy's commands: pip reads
# credentials from the droplet's netrc or keyring instead), no query, no blank.
_HTTP_URL = re.compile(r"^https?://[A-Za-z0-9.:_~%/+-]+$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_HOST_KEY = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")
HOST_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def text(value: object, pattern: re.Pattern[str] | None = None) -> str:
    """A non-empty string on one line (and matching `pattern`, if given)."""
    if not isinstance(value, str) or not value:
        raise Invalid("required, must be a non-empty string")
    if "\n" in value or "\r" in value:
        raise Invalid("must not contain a newline")
    if pattern and not pattern.match(value):
        raise Invalid(f"{value!r} is not valid")
    return value


def integer(value: object, low: int = 1, high: int = 65535) -> int:
    """An integer (not a bool, not a string of digits) from low to high."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{value!r} must be an integer")
    if not low <= value <= high:
        raise Invalid(f"{value} must be between {low} and {high}")
    return value


def flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid("must be true or false")
    return value


def remote_path(value: object) -> str:
    """An absolute path, without its trailing slash (but '/' stays '/')."""
    return text(value, _PATH).rstrip("/") or "/"


def http_url(value: object) -> str:
    """An http(s) URL for pip; credentials in it are refused without echoing them."""
    if isinstance(value, str) and "@" in value:
        raise Invalid("must not hold credentials (pip reads them from the droplet's ~/.netrc)")
    return text(value, _HTTP_URL)


def pip_source(value: object) -> str:
    """Where pip finds packages: an absolute path on the droplet, or an http(s) URL."""
    if isinstance(value, str) and value.startswith("/"):
        return remote_path(value)
    if isinstance(value, str) and "://" in value:
        return http_url(value)
    raise Invalid("must be an absolute path on the droplet or an http(s) URL")


def positive_seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise Invalid("must be a positive number of seconds")
    return float(value)


def dns_name(value: object) -> str:
    """A name of two labels or more, every label a DNS label."""
    name = text(value)
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
        raise Invalid(f"{name!r} is not a valid DNS name")
    return name


def role(value: object) -> str:
    name = text(value)
    if name not in ROLES:
        raise Invalid(f"{name!r} is not one of {', '.join(ROLES)}")
    return name


def access(value: object) -> str:
    name = text(value)
    if name not in ACCESS_MODES:
        raise Invalid(f"{name!r} is not one of {', '.join(ACCESS_MODES)}")
    return name


def names(
    problem: str, pattern: re.Pattern[str], extra: Callable[[str], bool] | None = None
) -> Callable[[object], tuple[str, ...]]:
    """A check for a list of strings that each match `pattern` (and pass `extra`)."""

    def check(value: object) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(
            isinstance(x, str) and pattern.match(x) and (extra is None or extra(x)) for x in value
        ):
            raise Invalid(problem)
        return tuple(value)

    return check


# GitHub's own rules: owner names are letters, digits and single hyphens; repository names
# letters, digits, '.', '_' and '-' (never "." or "..").
GITHUB_REPOSITORY = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}/(?!\.\.?$)[A-Za-z0-9._-]{1,100}$"
)


def github_repository(value: object) -> str:
    """The repository whose GitHub webhooks may release slots (webhooks compare a payload's
    `repository.full_name` with it)."""
    if not isinstance(value, str) or not GITHUB_REPOSITORY.match(value):
        raise Invalid('must be a GitHub repository like "owner/name"')
    return value


# A slot's ports in the order port_clash takes them: (field, whose port) — its own, then its
# candidates', which are the same fields plus the host's candidate_port_offset.
PORTS = (
    ("ui_port", "ui_port"),
    ("airflow_port", "airflow_port"),
    ("ui_port", "candidate UI port"),
    ("airflow_port", "candidate Airflow port"),
)


def port_clash(ports: list[tuple[int, tuple[int, ...]]]) -> tuple[int, str, str] | None:
    """The first port two services would share, over every slot and its candidates: `ports`
    is (slot id, its four ports in PORTS order) in file order; the answer is (slot id, the
    field, the problem), or None. Ports share one namespace (a UI port may not be another
    slot's Airflow or candidate port); a candidate port past 65535 is refused too."""
    seen: dict[int, tuple[int, str]] = {}
    for slot_id, values in ports:
        for (name, label), port in zip(PORTS, values, strict=True):
            what = (
                str(port)
                if label == name
                else f"{port} (its {label}, {name} + candidate_port_offset)"
            )
            if port > 65535:
                return slot_id, name, f"{what} is past 65535"
            other = seen.get(port)
            if other is not None:
                return slot_id, name, f"{what} is already used by slot {other[0]}'s {other[1]}"
            seen[port] = (slot_id, label)
    return None


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


CHECKS: dict[Kind, Callable[[object], object]] = {
    Kind.TEXT: text,
    Kind.IDENTIFIER: lambda v: text(v, _IDENTIFIER),
    Kind.PG_IDENTIFIER: lambda v: text(v, _PG_IDENT),
    Kind.UNIT_COMMAND: lambda v: text(v, _COMMAND),
    Kind.ADDRESS: lambda v: text(v, _ADDRESS),
    Kind.USER: lambda v: text(v, _USER),
    Kind.SCHEME: lambda v: text(v, _SCHEME),
    Kind.HTTPS_URL: lambda v: text(v, _HTTPS_URL),
    Kind.HTTP_URL: http_url,
    Kind.PIP_SOURCE: pip_source,
    Kind.EMAIL: lambda v: text(v, _EMAIL),
    Kind.GITHUB_REPOSITORY: github_repository,
    Kind.PATH: remote_path,
    Kind.DNS_NAME: dns_name,
    Kind.ROLE: role,
    Kind.ACCESS: access,
    Kind.GROUP: lambda v: text(v, _USER),
    Kind.PORT: integer,
    Kind.SLOT_PORT: lambda v: integer(v, low=1024),
    Kind.SLOT_ID: lambda v: integer(v, low=1, high=9999),
    Kind.PORT_OFFSET: lambda v: integer(v, low=1, high=60000),
    Kind.CONNECT_SECONDS: lambda v: float(integer(v, high=600)),
    Kind.MEGABYTES: lambda v: integer(v, low=0, high=1048576),
    # Below this a Python process cannot even start: a typo (512 meant, 51 written), not a limit.
    Kind.MEMORY_LIMIT: lambda v: integer(v, low=64, high=1048576),
    Kind.SECONDS: positive_seconds,
    Kind.FLAG: flag,
    Kind.PACKAGES: names(
        "must be a list of Debian package names", re.compile(r"^[a-z0-9][a-z0-9+.-]*$")
    ),
    Kind.UNIT_NAMES: names(
        "must be a list of systemd unit names", re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,200}$")
    ),
    Kind.HOST_KEY: lambda v: text(v, _HOST_KEY),
    Kind.RELATIVE_FILES: names(
        "must be a list of relative file names",
        re.compile(r"^[A-Za-z0-9_./-]+$"),
        lambda x: ".." not in x,
    ),
}


ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# What bin/run-process and the units set themselves: an [app.env] entry may not replace it.
RESERVED_ENV = frozenset(
    {
        "PORT", "UI_PORT", "AIRFLOW_PORT", "RELEASE_DIR", "TMPDIR", "HOME", "PATH", "SLOT",
        "SLOT_IDENTIFIER", "SLOT_SUBDOMAIN", "DEPLOYED_COMMIT", "DEPLOYED_BRANCH",
        "DEPLOYED_AT", "STAGING_CANDIDATE", "DATABASE_URL", "DATABASE_NAME",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    }
)  # fmt: skip
ENV_TEMPLATES = frozenset({"slot", "slot_id", "shared", "current", "release"})
_TEMPLATE = re.compile(r"\{([^{}]*)\}")


def env_value(value: object) -> str:
    """An [app.env] value: written double-quoted into a file sh reads, so none of the
    characters sh treats specially there; `{name}` only for the templates render fills."""
    if not isinstance(value, str):
        raise Invalid("must be a string")
    bad = next((c for c in value if c in '"$`\\' or ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise Invalid(f"must not contain {bad!r}")
    for name in _TEMPLATE.findall(value):
        if name not in ENV_TEMPLATES:
            known = ", ".join("{" + t + "}" for t in sorted(ENV_TEMPLATES))
            raise Invalid(f"unknown template {{{name}}} (known: {known})")
    if _TEMPLATE.sub("", value).count("{") or _TEMPLATE.sub("", value).count("}"):
        raise Invalid("has an unmatched brace")
    return value
