"""Every fact a run needs, read in ONE remote command: the probe (probe.py, standard library
only) runs on the droplet with the request as its argument and prints one JSON document, which
becomes a typed `HostFacts` here.

The types mirror the probe's answer field for field, so a plan reads `facts.state(path).type`
instead of `facts["stat"][path]["type"]`, and a test builds facts without a host
(`HostFacts.from_json({...})`).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from staging_ops.errors import StagingError
from staging_ops.jsondoc import JSONObject
from staging_ops.remote.connection import RemoteHost
from staging_ops.tls import CertificateFacts

_FACTS_SCRIPT = (Path(__file__).resolve().parent / "probe.py").read_text()


@dataclass(frozen=True)
class FactsRequest:
    """What the probe is asked: paths to lstat, paths to read, packages, the service user,
    boot services, unit states of deployed slots only ((current link, units) pairs), PEM
    certificates to read names and expiry from, and groups whose gid a file's group needs."""

    stat: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    user: str | None = None
    # (current link, its units, the worker units' prefix, the types with units of their own):
    # the probe adds a worker unit for each other type the live release's spec declares.
    units_if_deployed: tuple[tuple[str, tuple[str, ...], str, tuple[str, ...]], ...] = ()
    certificates: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def as_json(self) -> JSONObject:
        return {
            "stat": list(self.stat),
            "read": list(self.read),
            "packages": list(self.packages),
            "services": list(self.services),
            "user": self.user,
            "units_if_deployed": [
                [link, list(units), prefix, list(own)]
                for link, units, prefix, own in self.units_if_deployed
            ],
            "certificates": list(self.certificates),
            "groups": list(self.groups),
        }


@dataclass(frozen=True)
class PathState:
    """One path's lstat: type is missing, file, dir, link or error."""

    type: str
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    target: str | None = None  # links
    sha256: str | None = None  # files
    size: int | None = None  # files
    error: str | None = None

    @property
    def missing(self) -> bool:
        return self.type == "missing"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PathState:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data})

    def as_json(self) -> JSONObject:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class UserIds:
    uid: int
    gid: int


@dataclass(frozen=True)
class ServiceState:
    """`systemctl is-enabled` and `is-active` of a boot service ("not-found": not installed)."""

    enabled: str | None = None
    active: str | None = None

    @property
    def running_at_boot(self) -> bool:
        return self.enabled == "enabled" and self.active == "active"


@dataclass(frozen=True)
class HostFacts:
    """The probe's answer. `state` and `text` raise KeyError for a path that was not asked:
    a plan reading what the request forgot is a bug to see, not a missing file."""

    stat: Mapping[str, PathState] = field(default_factory=dict)
    content: Mapping[str, str | None] = field(default_factory=dict)
    packages: Mapping[str, bool] = field(default_factory=dict)
    user: UserIds | None = None
    units: Mapping[str, str] = field(default_factory=dict)
    services: Mapping[str, ServiceState] = field(default_factory=dict)
    certificates: Mapping[str, CertificateFacts] = field(default_factory=dict)
    euid: int | None = None
    # {group name: gid, or None where the host has no such group}
    groups: Mapping[str, int | None] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HostFacts:
        user = data.get("user")
        return cls(
            stat={p: PathState.from_json(s) for p, s in data.get("stat", {}).items()},
            content=dict(data.get("content", {})),
            packages=dict(data.get("packages", {})),
            user=UserIds(user["uid"], user["gid"]) if user else None,
            units=dict(data.get("units", {})),
            services={
                name: ServiceState(s.get("enabled"), s.get("active"))
                for name, s in data.get("services", {}).items()
            },
            certificates={
                path: CertificateFacts.from_probe(raw)
                for path, raw in data.get("certificates", {}).items()
            },
            euid=data.get("euid"),
            groups=dict(data.get("groups", {})),
        )

    def state(self, path: str) -> PathState:
        return self.stat[path]

    def text(self, path: str) -> str | None:
        """The file's text exactly as on disk (CRLF kept), or None (missing, unreadable, or
        not asked)."""
        return self.content.get(path)

    def service(self, name: str) -> ServiceState:
        return self.services.get(name, ServiceState())

    def certificate(self, path: str) -> CertificateFacts:
        """What the PEM certificate at `path` says (not there, or not asked: exists=False)."""
        return self.certificates.get(path, CertificateFacts(exists=False))

    @property
    def missing_packages(self) -> list[str]:
        return [name for name, installed in self.packages.items() if not installed]

    def owner_ids(self, owner: str) -> tuple[int, int]:
        """(uid, gid) that `owner` has on the host: root is 0:0; the service user before it
        exists is -1:-1 (matches nothing, as --check on a fresh host should show)."""
        if owner == "root":
            return 0, 0
        if self.user is None:
            return -1, -1
        return self.user.uid, self.user.gid

    def group_id(self, group: str) -> int:
        """The gid `group` has on the host: root is 0; a group the host lacks (or that was not
        asked) is -1, which matches nothing."""
        if group == "root":
            return 0
        gid = self.groups.get(group)
        return -1 if gid is None else gid

    def with_user(self, user: UserIds) -> HostFacts:
        """These facts once the prepare step has made (or found) the service user."""
        return replace(self, user=user)


def gather_facts(remote: RemoteHost, request: FactsRequest) -> HostFacts:
    """Every fact a run needs (stats, contents, packages, user, unit states): one command."""
    payload = json.dumps(request.as_json())
    command = f"python3 -c {shlex.quote(_FACTS_SCRIPT)} {shlex.quote(payload)}"
    _, out, _ = remote.run(command)
    try:
        data = json.loads(out)
    except ValueError:
        raise StagingError(f"{remote.host.name}: facts: unreadable answer: {out[:200]!r}") from None
    return HostFacts.from_json(data)
