"""What provision-all did (or, with --check, would do), per host and for the registry: the
report `invoke provision-all` prints and `--json` emits."""

from __future__ import annotations

from dataclasses import dataclass, field

from staging_ops.jsondoc import JSONObject
from staging_ops.output import StepRecord
from staging_ops.provision.plan import Change


@dataclass(frozen=True)
class SlotReload:
    """A deployed slot a run reloaded (or tried to): its identifier and why; once it ended,
    how (hand-over or in place) and whether it worked, with how long the slot was down or
    what failed (`ok` None: it never ended, the run was cut off)."""

    slot: str
    reason: str
    how: str | None = None
    ok: bool | None = None
    down_seconds: float | None = None
    error: str | None = None

    def as_json(self) -> JSONObject:
        value: JSONObject = {"slot": self.slot, "reason": self.reason}
        if self.ok is True:
            value.update(how=self.how, ok=True, down_seconds=self.down_seconds)
        elif self.ok is False:
            value.update(how=self.how, ok=False, error=self.error)
        return value


@dataclass(frozen=True)
class RegistryMigrations:
    """The registry's migrations in a run: how many changed (with --check, would change),
    how long it took, and why they failed."""

    changed: int
    seconds: float
    error: str | None = None

    def as_json(self) -> JSONObject:
        error = {"error": self.error} if self.error is not None else {}
        return {"changed": self.changed, **error, "seconds": self.seconds}


@dataclass
class HostReport:
    """What one host's run did (or, with check, would do)."""

    host: str
    changes: list[Change] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    error: str | None = None
    commands: int = 0
    uploads: int = 0
    seconds: float = 0.0
    waiting: list[str] = field(default_factory=list)
    # The failure's exit code (errors.py): 2 when the host was refused as bad input, untouched.
    exit_code: int = 0
    # Each deployed slot reloaded (or not).
    reloads: list[SlotReload] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.changes)

    def as_dict(self) -> JSONObject:
        return {
            "host": self.host,
            "changed": self.changed,
            "failed": self.error is not None,
            "error": self.error,
            "commands": self.commands,
            "uploads": self.uploads,
            "seconds": round(self.seconds, 3),
            "waiting_for_first_deploy": self.waiting,
            "changes": [
                {
                    "step": c.step,
                    "target": c.target,
                    "action": c.action,
                    **({"reason": c.reason} if c.reason else {}),
                }
                for c in self.changes
            ],
            "reloads": [r.as_json() for r in self.reloads],
            "steps": [s.as_json() for s in self.steps],
        }


@dataclass
class ProvisionReport:
    hosts: list[HostReport]
    # None: no registry to migrate (no STAGING_REGISTRY_DSN).
    registry: RegistryMigrations | None = None
    check: bool = False

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts) + (self.registry.changed if self.registry else 0)

    @property
    def registry_error(self) -> str | None:
        return self.registry.error if self.registry else None

    @property
    def failed(self) -> bool:
        return any(h.error for h in self.hosts) or bool(self.registry_error)

    @property
    def exit_code(self) -> int:
        """0 done; 2 when every failure was bad input (those hosts untouched); else 1."""
        if not self.failed:
            return 0
        codes = {h.exit_code for h in self.hosts if h.error}
        return 2 if codes == {2} and not self.registry_error else 1

    def as_dict(self) -> JSONObject:
        return {
            "check": self.check,
            "changed": self.changed,
            "failed": self.failed,
            "hosts": [h.as_dict() for h in self.hosts],
            "registry": self.registry.as_json() if self.registry else {},
        }
