"""`release --stop` takes the slot's deploy lock, on the real sandbox droplet."""

from __future__ import annotations

import json
import threading
import time

from staging_ops.deploy import lock as slot_lock
from staging_ops.inventory import load_inventory
from staging_ops.remote import connect
from staging_ops.slot_layout import SlotPaths
from tests.conftest import run_invoke
from tests.sandbox.slots import slot_for

SLOT = slot_for(__name__)


def hold_lock(sandbox, operator: str):
    inventory = load_inventory(sandbox.inventory_path)
    slot = inventory.slots[SLOT]
    host = inventory.host_of(slot)
    session = connect(host)
    lock = slot_lock.acquire(session, SlotPaths(host, slot).lock, slot.identifier, 600, operator)
    return session, lock


def stop(sandbox):
    return run_invoke("release", "--slot", str(SLOT), "--stop", "--force", env=sandbox.env())


def test_stop_while_a_deploy_holds_the_lock_is_a_conflict_naming_it(sandbox, provisioned):
    """Refused before anything changes: the claim stays, the deploy keeps its lock."""
    run_invoke("release", "--slot", str(SLOT), "--force", env=sandbox.env())  # a clean start
    claimed = run_invoke(
        "claim", "--slot", str(SLOT), "--task", "JA-88", "--owner", "qa", env=sandbox.env()
    )
    assert claimed.returncode == 0, claimed.stdout + claimed.stderr
    session, lock = hold_lock(sandbox, "deployer@busy")
    try:
        started = time.monotonic()
        result = stop(sandbox)
        assert result.returncode == 3, result.stdout + result.stderr
        assert f"staging-{SLOT}: a deploy is already running: lock held by " in result.stderr
        assert "deployer@busy on " in result.stderr and "since 20" in result.stderr
        assert time.monotonic() - started >= 4  # it waited a moment for the deploy first
        # The deploy still holds its lock: it was not taken over.
        assert lock.run(session, "echo mine")[1].strip() == "mine"
        status = run_invoke("status", "--json", "--no-health", env=sandbox.env())
        held = next(s for s in json.loads(status.stdout) if s["slot"] == SLOT)
        assert (held["status"], held["task"]) == ("claimed", "JA-88")
    finally:
        lock.release()
        session.close()
        run_invoke("release", "--slot", str(SLOT), "--force", env=sandbox.env())


def test_stop_waits_for_a_deploy_that_ends_soon_then_stops(sandbox, provisioned):
    session, lock = hold_lock(sandbox, "deployer@finishing")
    released = threading.Timer(1.0, lock.release)
    released.start()
    try:
        result = stop(sandbox)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "stopped" in result.stdout
    finally:
        released.join()
        session.close()
