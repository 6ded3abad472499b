"""What `status` shows of the integrations: per slot, per service, the events not delivered
yet and those given up (`--json`: each row's `integrations`), and one line under the table
that says which services are on (a service without its token is off: said, never an
error; a token is never shown)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from staging_ops.errors import StagingError
from staging_ops.integrations import config
from staging_ops.jsondoc import JSONObject
from staging_ops.registry import outbox as rows
from staging_ops.registry.outbox import OutboxCounts

NAMES = {"github": "GitHub", "linear": "Linear"}


@dataclass(frozen=True)
class Summary:
    on: tuple[str, ...]
    # (target, slot) -> counts; None when they could not be read (no database access)
    counts: dict[tuple[str, int], OutboxCounts] | None = field(default_factory=dict)
    problem: str | None = None

    def for_slot(self, slot_id: int) -> JSONObject:
        """A status row's `integrations`: {"github": {"pending", "failed"} or "off", ...}."""
        out: JSONObject = {}
        for target in config.TARGETS:
            counts = None if self.counts is None else self.counts.get((target, slot_id))
            if target not in self.on and not counts:
                out[target] = "off"
            elif self.counts is None:
                out[target] = {"pending": None, "failed": None}
            else:
                counts = counts or OutboxCounts()
                out[target] = {"pending": counts.pending, "failed": counts.failed}
        return out

    def line(self) -> str:
        parts = []
        for target in config.TARGETS:
            name = NAMES[target]
            if target not in self.on:
                parts.append(f"{name} off ({config.off_reason(target)})")
                continue
            if self.counts is None:
                parts.append(f"{name} on")
                continue
            pending = sum(c.pending for (t, _), c in self.counts.items() if t == target)
            failed = sum(c.failed for (t, _), c in self.counts.items() if t == target)
            parts.append(f"{name} on ({pending} undelivered, {failed} failed)")
        tail = f"; {self.problem}" if self.problem else ""
        return "integrations: " + "; ".join(parts) + tail


def summary(registry: Any, settings: config.Settings | None = None) -> Summary:
    settings = settings or config.from_env()
    on = tuple(settings.targets)
    dsn = getattr(registry, "dsn", None)
    if not dsn:
        return Summary(on, None)
    try:
        return Summary(on, rows.counts(dsn))
    except StagingError as exc:
        return Summary(on, None, f"outbox not read: {exc}")
