"""Slot states for the claim tables: the registry's rows, written as facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from staging_ops.slots.model import SlotState

NOW = datetime(2025, 1, 8, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def slot(slot_id: int, task: str | None = None, **fields: object) -> SlotState:
    """Slot `slot_id` as the inventory registers it (1-9 QA, 10 staging); claimed by `task`
    (owner alice, claimed an hour ago, expiring in a day) when a task is given."""
    claim: dict[str, object] = {}
    if task:
        claim = {
            "status": "claimed",
            "task": task,
            "owner": "alice",
            "claimed_at": NOW - HOUR,
            "expires_at": NOW + 24 * HOUR,
            "ttl_seconds": 86400,
        }
    return SlotState(
        **{
            "slot_id": slot_id,
            "identifier": f"staging-{slot_id}",
            "subdomain": f"staging-{slot_id}.justapply.net",
            "role": "staging" if slot_id == 10 else "qa",
            "status": "free",
            **claim,
            **fields,
        }
    )


def registry(claimed: dict[int, str]) -> list[SlotState]:
    """All ten slots, `claimed` mapping slot id to the task holding it."""
    return [slot(n, claimed.get(n)) for n in range(1, 11)]
