"""Stop a slot's services on its droplet (release --stop)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from staging_ops import remote
from staging_ops.deploy import current_sh, processes_sh
from staging_ops.deploy import lock as slot_lock
from staging_ops.inventory import Inventory, Slot
from staging_ops.render import slot_units, worker_unit_prefix
from staging_ops.slot_layout import SlotPaths
from staging_ops.slots.owner import owner_or_default

# How long a stop waits for a deploy that holds the slot's lock (its last steps, say) before
# it gives up with a Conflict naming the holder. Longer waits belong to the operator.
LOCK_WAIT = 5.0


@contextmanager
def slot_locked(
    inventory: Inventory, slot: Slot, operator: str | None = None, action: str = "stop"
) -> Iterator[tuple[remote.RemoteHost, slot_lock.SlotLock]]:
    """The slot's deploy lock, held for the block (waiting up to LOCK_WAIT for a deploy that
    is finishing, else a Conflict naming it); yields the session and the lock."""
    host = inventory.host_of(slot)
    session = remote.connect(host)
    try:
        lock = slot_lock.acquire_waiting(
            session,
            SlotPaths(host, slot).lock,
            slot.identifier,
            slot_lock.hung_after(inventory.app.verify_timeout),
            operator or owner_or_default(None),
            LOCK_WAIT,
            action=action,
        )
        try:
            yield session, lock
        finally:
            lock.release()
    finally:
        session.close()


def stop_slot(
    inventory: Inventory,
    slot: Slot,
    operator: str | None = None,
    held: tuple[remote.RemoteHost, slot_lock.SlotLock] | None = None,
) -> str:
    """Stop the slot's units and unlink `current`, so that provision-all treats the slot as
    waiting for its next deploy instead of starting it again. Releases stay for rollback.

    It holds the slot's deploy lock meanwhile (`held`, or taken here): a stop in the middle of
    a deploy would fail that deploy's verify, whose rollback would then start the slot we just
    stopped."""
    if held is None:
        with slot_locked(inventory, slot, operator) as taken:
            return stop_slot(inventory, slot, operator, taken)
    session, lock = held
    host = inventory.host_of(slot)
    units = slot_units(inventory.app, slot)
    current = SlotPaths(host, slot).current
    # Worker units of process types a release declared (no template of their own): stopped
    # and disabled, since nothing declares them any more.
    workers = processes_sh.command(host.systemd_dir, worker_unit_prefix(inventory.app, slot), 0)
    lock.run(session, workers)
    lock.run(session, current_sh.stop_command(current, *units))
    return f"stopped {', '.join(units)}"
