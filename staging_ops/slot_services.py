"""Stop a slot's services on its droplet (release --stop)."""

from __future__ import annotations

from staging_ops import remote
from staging_ops.inventory import Inventory, Slot
from staging_ops.render import slot_units


def stop_slot(inventory: Inventory, slot: Slot) -> str:
    """Stop the slot's units and unlink `current`, so that provision-all treats the slot as
    waiting for its next deploy instead of starting it again. Releases stay for rollback."""
    host = inventory.host_of(slot)
    session = remote.connect(host)
    try:
        units = slot_units(inventory.app, slot)
        current = f"{slot.directory(host)}/current"
        session.run(f"systemctl stop {remote.quote(*units)} && rm -f {remote.quote(current)}")
        return f"stopped {', '.join(units)}"
    finally:
        session.close()
