"""What the dashboard shows, as one JSON document: every slot (with its public URL and last known
health), the recent events of the registry, and what the page needs to link tasks to Linear."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from staging_ops.claims.service import StatusRow, status_rows
from staging_ops.inventory import Inventory, Slot
from staging_ops.jsondoc import JSONObject
from staging_ops.processes.status import processes_json
from staging_ops.slots.model import SlotEvent, SlotRegistry, utc_text
from staging_ops.web.dashboard.health_cache import Health

EVENTS_SHOWN = 15
# The fields an operator cares about in an event, as the page names them, in its order
# (the status change is left out: the event's action says it).
EVENT_FIELDS = {
    "task": "task",
    "owner": "owner",
    "branch": "branch",
    "commit": "commit",
    "note": "note",
    "expires_at": "expires",
}
SHORT_COMMIT = 12
NO_INVENTORY = (
    "The inventory could not be loaded (see the server's log), so live health and the "
    "slots' links are unavailable."
)


def slot_url(inventory: Inventory, slot: Slot) -> str:
    """Where a browser reaches the slot: its subdomain on the host's public scheme and port."""
    host = inventory.host_of(slot)
    default_port = 443 if host.public_scheme == "https" else 80
    port = host.public_port
    suffix = f":{port}" if port and port != default_port else ""
    return f"{host.public_scheme}://{slot.subdomain}{suffix}/"


def _rows(registry: SlotRegistry, inventory: Inventory | None, now: datetime) -> list[StatusRow]:
    if inventory is not None:
        return status_rows(registry, inventory, with_health=False, now=now)
    # Without an inventory the registry alone still says who holds what.
    return [StatusRow(s.slot_id, s, None, s.expired(now)) for s in registry.status()]


def _change_text(value: Any, key: str) -> str:
    if value in (None, ""):
        return "–"
    if key.endswith("_at"):
        return utc_text(datetime.fromisoformat(str(value)))
    if key == "commit":
        return str(value)[:SHORT_COMMIT]
    return str(value)


def _changes(event: SlotEvent) -> list[dict[str, str]]:
    """What changed, as text; a change invisible at that precision (a renewal within the
    same minute) is left out."""
    found = []
    for key, (before, after) in event.changes().items():
        if key not in EVENT_FIELDS:
            continue
        old, new = _change_text(before, key), _change_text(after, key)
        if old != new:
            found.append({"field": EVENT_FIELDS[key], "before": old, "after": new})
    order = list(EVENT_FIELDS.values())
    return sorted(found, key=lambda change: order.index(change["field"]))


def event_summary(event: SlotEvent) -> JSONObject:
    """An event without its full before/after rows: only the changes worth reading."""
    return {
        "id": event.id,
        "slot_id": event.slot_id,
        "action": event.action,
        "actor": event.actor,
        "via": event.via,
        "at": event.at.isoformat(),
        # A deploy's detail (branch@commit) only repeats its changes; a reap's is its reason.
        "detail": None if event.action == "deploy" else event.detail,
        "changes": _changes(event),
    }


def build_board(
    registry: SlotRegistry,
    inventory: Inventory | None,
    health: Health,
    health_checked_at: datetime | None,
    now: datetime,
) -> JSONObject:
    """The whole page's data. Health and drift are None for a slot nobody has checked yet."""
    slots = []
    for row in _rows(registry, inventory, now):
        checks = health.get(row.slot_id)
        probes = checks.probes if checks else None
        drift = checks.drift(row.commit, row.status) if checks else None
        shown = {
            # Without an inventory, only the registry's side.
            **(row.as_json() if inventory else row.claim_json()),
            "url": slot_url(inventory, row.slot) if inventory and row.slot else None,
            "ui": probes.ui if probes else None,
            "airflow": probes.airflow if probes else None,
            # Each process the live release declares: {type: {"state", "unit", "problem"}}.
            "processes": processes_json(checks.processes) if checks else None,
            # Registry, the droplet's `current` and /api/version, once health has been checked.
            "drift": drift.as_json() if drift else None,
        }
        shown.pop("updated_at", None)
        slots.append(shown)
    return {
        "now": now.isoformat(),
        "linear_url": inventory.app.linear_url.rstrip("/") if inventory else None,
        "inventory_error": None if inventory else NO_INVENTORY,
        "health_checked_at": health_checked_at.isoformat() if health_checked_at else None,
        "slots": slots,
        "events": [event_summary(e) for e in registry.history(None, EVENTS_SHOWN)],
    }
