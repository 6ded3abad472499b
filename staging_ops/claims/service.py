"""What the claim tasks do, on any SlotRegistry (registry/from_env.py picks the one the
environment names).

tasks.py parses flags and prints; this module turns flags into validated requests, waits for a
slot when asked to, releases (with --stop / --reset-db under the slot's deploy lock), and
merges the registry with the inventory and live health for `status`. The rules a claim obeys
are slots/rules.py, enforced by the registry; `reap` is claims/reap.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from staging_ops import parsing
from staging_ops.claims.reap import reap
from staging_ops.claims.rows import StatusRow
from staging_ops.errors import BadInput, Conflict, StagingError
from staging_ops.health import LiveChecks
from staging_ops.integrations import released
from staging_ops.inventory import Inventory, Slot
from staging_ops.slots.model import (
    ClaimResult,
    HoldsAnotherSlot,
    ReleaseResult,
    SlotRegistry,
    parse_task,
    parse_text,
    parse_ttl,
)
from staging_ops.slots.owner import owner_or_default

MAX_WAIT = timedelta(days=1)  # how long `claim --wait` may keep trying
# reap is claims/reap.py's; tasks.py and the tests reach every claim task through this module.
__all__ = [
    "ClaimRequest",
    "ReleaseOutcome",
    "StatusRow",
    "claim",
    "live_health",
    "reap",
    "release",
    "status_rows",
]


# ---- claim -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimRequest:
    """A validated `invoke claim`: slot None means "lowest free QA slot"."""

    slot_id: int | None
    task: str
    owner: str
    ttl: timedelta
    note: str | None
    wait: timedelta | None

    @classmethod
    def parse(
        cls,
        inventory: Inventory,
        *,
        slot: object,
        task: object,
        owner: str | None,
        ttl: object,
        note: str | None,
        wait: object = None,
    ) -> ClaimRequest:
        """Everything checked before the registry is touched (bad input → exit 2)."""
        if slot is None or slot == "":
            raise BadInput(f"--slot is required: {inventory.valid_slots_text()} or auto")
        slot_id = None if str(slot).lower() == "auto" else inventory.slot(slot).id
        waiting = parsing.duration(wait or "0", "wait", low=timedelta(0), high=MAX_WAIT)
        return cls(
            slot_id=slot_id,
            task=parse_task(task),
            ttl=parse_ttl(ttl),
            note=parse_text(note, "note"),
            wait=waiting or None,
            owner=owner_or_default(owner),
        )


def claim(
    registry: SlotRegistry,
    request: ClaimRequest,
    *,
    notify: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ClaimResult:
    """Claim; with `request.wait`, keep retrying while the slot (or every QA slot) is held by
    others. That the task holds another slot is final: no wait changes it."""
    deadline = clock() + request.wait.total_seconds() if request.wait else None
    pause = 1.0
    while True:
        try:
            return registry.claim(
                request.slot_id, request.task, request.owner, request.ttl, request.note
            )
        except HoldsAnotherSlot:
            raise
        except Conflict as exc:
            left = deadline - clock() if deadline is not None else 0.0
            if left <= 0:
                raise
            if pause == 1.0:
                notify(f"{exc}; waiting up to {int(left)}s for it to free")
            sleep(min(pause, left))
            pause = min(pause * 2, 15.0)  # back off, but notice a free slot within ~15 s


# ---- release -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseOutcome:
    result: ReleaseResult
    done: list[str]  # what --stop / --reset-db report they did


def release(
    registry: SlotRegistry,
    inventory: Inventory,
    slot: object,
    *,
    by: str | None,
    task: object = None,
    force: bool = False,
    stop: bool = False,
    reset_db: bool = False,
) -> ReleaseOutcome:
    """Release the claim (refused for a non-holder unless forced), then optionally stop the
    slot's services and recreate its database. The claim check comes first, so nobody stops
    or wipes a slot that someone else holds; with --stop or --reset-db the slot's deploy lock
    is taken before that (a Conflict naming the deploy that holds it), so neither runs in the
    middle of a deploy, and a refused lock leaves the claim as it was."""
    if not str(slot or "").strip():
        raise BadInput(f"--slot is required: {inventory.valid_slots_text()}")
    target = inventory.slot(slot)
    task_key = parse_task(task) if task else None
    who = owner_or_default(by)
    if not (stop or reset_db):
        return ReleaseOutcome(_release_claim(registry, target.id, who, task_key, force), [])
    # Imported here: only a release that touches the droplet needs Fabric.
    from staging_ops.deploy.stop import slot_locked, stop_slot
    from staging_ops.provision.databases import reset_slot_database

    with slot_locked(inventory, target, who, action="release") as held:
        result = _release_claim(registry, target.id, who, task_key, force)
        hooks: list[tuple[str, Callable[[], str | None]]] = []
        if stop:
            hooks.append(("--stop", lambda: stop_slot(inventory, target, who, held)))
        if reset_db:
            hooks.append(("--reset-db", lambda: reset_slot_database(inventory, target)))
        done = []
        for flag, hook in hooks:
            try:
                done.append(str(hook() or flag))
            except StagingError as exc:
                state = "released" if result.released else "free"
                raise StagingError(
                    f"slot {target.id} is {state}, but {flag} failed: {exc}"
                ) from None
    return ReleaseOutcome(result, done)


def _release_claim(
    registry: SlotRegistry, slot_id: int, who: str, task: str | None, force: bool
) -> ReleaseResult:
    """registry.release; a forced release refused because another task holds the slot says
    how to release it anyway. --force overrides who may release, never the task named: the
    task is a condition (reap and auto-release rely on it to free only the claim they
    judged), in the CLI as in the API."""
    try:
        return released(registry, None, registry.release(slot_id, who, task=task, force=force), who)
    except Conflict as exc:
        if force and task and registry.get(slot_id).task not in (None, task):
            raise Conflict(
                f"{exc} (--force does not override --task; without --task it releases "
                "whoever holds the slot)"
            ) from None
        raise


# ---- status ------------------------------------------------------------------------------


def live_health(inventory: Inventory, slots: list[Slot]) -> dict[int, LiveChecks]:
    """UI and Airflow health per slot (checked through nginx, in parallel) with the commit the
    UI serves, and meanwhile (one probe per host) the release `current` points to (or why the
    host was not reached) and its units; from both, each process the release declares, judged
    (None when not read); probes that cannot run at all are missing, which status shows as
    "?"."""
    # requests and Fabric: only when health is asked for
    from staging_ops.health import check_slots
    from staging_ops.remote.live import read_live, slot_processes

    with ThreadPoolExecutor(max_workers=1) as pool:
        live_future = pool.submit(read_live, inventory, slots)
        try:
            probes = check_slots(inventory, slots)
        except (StagingError, OSError):
            probes = {}
        live = live_future.result()
    health = {}
    for slot in slots:
        checks = probes.get(slot.id)
        health[slot.id] = LiveChecks(
            probes=checks,
            live=live.releases.get(slot.id),
            unread=live.unread.get(slot.id, "not read"),
            memory_mb=live.memory_mb.get(slot.id),
            processes=slot_processes(
                inventory.app,
                slot,
                live,
                ui_up=checks.ui == "up" if checks else None,
                airflow=checks.airflow_answer if checks else None,
            ),
        )
    return health


def status_rows(
    registry: SlotRegistry,
    inventory: Inventory,
    *,
    with_health: bool = True,
    now: datetime | None = None,
) -> list[StatusRow]:
    """One row per slot of the inventory or the registry; health is checked meanwhile."""
    now = now or datetime.now(UTC)
    slots = list(inventory.slots.values())
    with ThreadPoolExecutor(max_workers=1) as pool:
        health_future = pool.submit(live_health, inventory, slots) if with_health else None
        states = {s.slot_id: s for s in registry.status()}
        health = health_future.result() if health_future else {}
    return [
        StatusRow(
            slot_id,
            states.get(slot_id),
            inventory.slots.get(slot_id),
            expired=bool(slot_id in states and states[slot_id].expired(now)),
            with_health=with_health,
            checks=health.get(slot_id),
        )
        for slot_id in sorted(set(inventory.slots) | set(states))
    ]
