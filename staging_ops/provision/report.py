"""What provision-all did (or, with --check, would do), per host and for the registry: the
report `invoke provision-all` prints and `--json` emits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from staging_ops.output import StepRecord
from staging_ops.provision.plan import Change


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
    # Each deployed slot reloaded (or not): slot, reason, how, ok, down_seconds or error.
    reloads: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.changes)

    def as_dict(self) -> dict[str, Any]:
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
            "reloads": self.reloads,
            "steps": [s.as_json() for s in self.steps],
        }


@dataclass
class ProvisionReport:
    hosts: list[HostReport]
    registry: dict[str, Any] = field(default_factory=dict)
    check: bool = False

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts) + int(self.registry.get("changed", 0))

    @property
    def failed(self) -> bool:
        return any(h.error for h in self.hosts) or bool(self.registry.get("error"))

    @property
    def exit_code(self) -> int:
        """0 done; 2 when every failure was bad input (those hosts untouched); else 1."""
        if not self.failed:
            return 0
        codes = {h.exit_code for h in self.hosts if h.error}
        return 2 if codes == {2} and not self.registry.get("error") else 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "changed": self.changed,
            "failed": self.failed,
            "hosts": [h.as_dict() for h in self.hosts],
            "registry": self.registry,
        }
