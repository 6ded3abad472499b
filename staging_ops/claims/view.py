"""How claim results read on an operator's terminal: one-line summaries and tables.

Free text (owner, note) is printed exactly as stored; times are UTC or relative to now.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from staging_ops.claims.reap import ReapItem
from staging_ops.claims.rows import StatusRow
from staging_ops.claims.service import ReleaseOutcome
from staging_ops.health import CertificateCheck
from staging_ops.output import table
from staging_ops.processes.status import compact
from staging_ops.slots.model import ClaimResult, SlotEvent, format_duration, utc_text

STATUS_COLUMNS = (
    "slot",
    "subdomain",
    "status",
    "task",
    "owner",
    "branch",
    "commit",
    "deployed",
    "expires",
    "ui",
    "airflow",
    "processes",
    "tls",
    "drift",
)
HISTORY_FIELDS = ("status", "task", "owner", "branch", "commit", "note", "expires_at")


def describe_claim(result: ClaimResult) -> str:
    slot = result.slot
    verb = "renewed" if result.renewed else "claimed"
    note = f"; note: {slot.note}" if slot.note else ""
    return (
        f"{verb} slot {slot.slot_id} ({slot.identifier}, {slot.subdomain}) for "
        f"{slot.task}, owner {slot.owner}, until {utc_text(slot.expires_at)}{note}"
    )


def describe_release(outcome: ReleaseOutcome) -> str:
    before = outcome.result.before
    if outcome.result.released:
        line = (
            f"released slot {before.slot_id} ({before.identifier}) from {before.task} "
            f"(owner {before.owner})"
        )
    else:
        line = f"slot {before.slot_id} ({before.identifier}) was already free"
    return "; ".join([line, *outcome.done])


def _relative(moment: datetime | str | None, now: datetime) -> str | None:
    if not moment:
        return None
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    delta = when - now
    if delta.total_seconds() >= 0:
        return f"in {format_duration(delta)}"
    return f"{format_duration(-delta)} ago"


def status_table(rows: list[StatusRow], now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    shown = []
    for row in rows:
        state = row.state
        expires = _relative(state.expires_at if state else None, now)
        drift = row.drift()
        shown.append(
            {
                "slot": row.slot_id,
                "subdomain": row.subdomain,
                "status": row.status,
                "task": state.task if state else None,
                "owner": state.owner if state else None,
                "branch": state.branch if state else None,
                "commit": (row.commit or "")[:8],
                "deployed": _relative(state.deployed_at if state else None, now),
                "expires": f"EXPIRED {expires}" if row.expired else expires,
                "ui": row.ui,
                "airflow": row.airflow,
                "processes": compact(row.processes),
                "tls": _tls_text(row.certificate, now),
                "drift": drift.label() if drift else None,
            }
        )
    columns = [
        c
        for c in STATUS_COLUMNS
        if c not in ("ui", "airflow", "processes", "tls", "drift")
        or any(r.get(c) is not None for r in shown)
    ]
    return table(shown, columns)


def _tls_text(check: CertificateCheck | None, now: datetime) -> str | None:
    """The certificate column: what is wrong with it, else when it expires."""
    if not check:
        return None
    if check.problem:
        return check.problem
    return f"ok, expires {_relative(check.expires, now)}"


def _change_text(event: SlotEvent) -> str:
    parts = []
    changes = event.changes()
    for key in HISTORY_FIELDS:
        if key not in changes:
            continue
        old, new = changes[key]
        if key == "expires_at":
            old, new = (utc_text(datetime.fromisoformat(v)) if v else None for v in (old, new))
        parts.append(f"{key}: {_dash(old)} → {_dash(new)}")
    return "; ".join(parts)


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)


def history_table(events: list[SlotEvent]) -> str:
    rows = [
        {
            "at": utc_text(e.at),
            "slot": e.slot_id,
            "action": e.action,
            "actor": e.actor,
            "via": e.via,
            "change": _change_text(e),
            "detail": e.detail,
        }
        for e in events
    ]
    return table(rows, ("at", "slot", "action", "actor", "via", "change", "detail"))


def reap_table(items: list[ReapItem]) -> str:
    if not items:
        return "nothing to reap"
    return table(
        [item.to_dict() for item in items],
        ("slot", "identifier", "task", "owner", "branch", "reason", "outcome"),
    )
