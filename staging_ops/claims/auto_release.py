"""Releases nobody typed: the slot held by a merged or deleted branch (GitHub) or by a task
that was completed or canceled (Linear), recorded as `via github` / `via linear`.

`holders` decides which claims a trigger names (pure); `auto_release` frees them through the
registry, each release conditional on the claim still being the one judged (same task; for a
branch, still the same deployed commit), so a claim taken or deployed again meanwhile is
skipped. With the inventory's `auto_release_stop`, the slot's services are stopped too, under
its deploy lock, as `invoke release --stop` does: stopped first, then the claim freed, so
that what could not be done now (a deploy holds the lock, the droplet is unreachable, the stop
failed) leaves the claim as it was and is reported as `retry` (NotDone): the webhook then
answers so that the delivery is sent again, and records nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from staging_ops.claims.reap import deployed_by_holder as _deployed_by_holder
from staging_ops.errors import Conflict, StagingError
from staging_ops.integrations import released
from staging_ops.inventory import Inventory
from staging_ops.jsondoc import JSONObject
from staging_ops.slots.model import SlotRegistry, SlotState


@dataclass(frozen=True)
class Trigger:
    """What happened: `branch` merged or deleted, or `task` done; `channel` ("github" or
    "linear") is the history's `via`, `actor` who did it there, `reason` the event's words and
    link."""

    channel: str
    reason: str
    branch: str | None = None
    task: str | None = None
    actor: str | None = None


class NotDone(StagingError):
    """What the trigger asks of a slot cannot be done now (its deploy lock is held, its
    droplet unreachable, stopping its services failed); the claim is left as it was, so the
    same trigger, sent again later, does it."""


@dataclass(frozen=True)
class SlotOutcome:
    """What became of one claim the trigger named: released or not, in words (`outcome`),
    and `retry` when it could not be done now (the same trigger, sent again, does it)."""

    slot: int
    task: str | None
    branch: str | None
    released: bool
    outcome: str
    retry: bool = False

    def as_json(self) -> JSONObject:
        """The webhook answer's entry (`retry` only when set)."""
        value: JSONObject = {
            "slot": self.slot,
            "task": self.task,
            "branch": self.branch,
            "released": self.released,
            "outcome": self.outcome,
        }
        if self.retry:
            value["retry"] = True
        return value


@dataclass
class AutoReleaseOutcome:
    """Per slot the trigger named: what became of it."""

    slots: list[SlotOutcome] = field(default_factory=list)

    @property
    def released(self) -> list[int]:
        return [s.slot for s in self.slots if s.released]

    @property
    def not_done(self) -> list[int]:
        """The slots whose release could not be done now: the delivery is not done."""
        return [s.slot for s in self.slots if s.retry]

    def slots_json(self) -> list[JSONObject]:
        return [s.as_json() for s in self.slots]

    def summary(self) -> str:
        if not self.slots:
            return "no slot is held by it"
        return "; ".join(f"slot {s.slot} ({s.task}): {s.outcome}" for s in self.slots)


def _task_in_branch(branch: str) -> str | None:
    # Imported here: deploy's module brings Fabric, which a webhook that names a slot's
    # deployed branch never needs.
    from staging_ops.slots.branch import task_from_branch

    return task_from_branch(branch)


def holders(states: Sequence[SlotState], trigger: Trigger) -> list[SlotState]:
    """The claims `trigger` names. A branch names the claims that deployed it themselves (not
    a predecessor's deploy the row still shows); if none did, the claim of the Linear key in
    its name (`ja-123-fix-x` → JA-123), as `invoke deploy` reads it. A task names its claim."""
    claimed = [s for s in states if s.claimed]
    if trigger.task:
        return [s for s in claimed if s.task == trigger.task]
    if not trigger.branch:
        return []
    deployed = [s for s in claimed if _deployed_by_holder(s) and s.branch == trigger.branch]
    if deployed:
        return deployed
    task = _task_in_branch(trigger.branch)
    return [s for s in claimed if task and s.task == task]


def auto_release(
    registry: SlotRegistry, inventory: Inventory | None, trigger: Trigger
) -> AutoReleaseOutcome:
    """Free the claims `trigger` names; Conflicts (the claim changed meanwhile, a deploy holds
    the lock for --stop) are reported per slot, not raised."""
    acting = registry.acting_via(trigger.channel)
    who = trigger.actor or trigger.channel
    outcome = AutoReleaseOutcome()
    for state in holders(acting.status(), trigger):
        by_branch = trigger.branch is not None and state.branch == trigger.branch
        retry = False
        try:
            freed, said = _release(
                acting, inventory, state, who, trigger.reason, state.commit if by_branch else None
            )
        except NotDone as exc:
            freed, said, retry = False, f"not done: {exc}", True
        except Conflict as exc:  # the claim changed meanwhile: not the one the trigger named
            freed, said = False, f"skipped: {exc}"
        outcome.slots.append(
            SlotOutcome(state.slot_id, state.task, state.branch, freed, said, retry)
        )
    return outcome


def _release(
    registry: SlotRegistry,
    inventory: Inventory | None,
    state: SlotState,
    who: str,
    reason: str,
    commit: str | None,
) -> tuple[bool, str]:
    """Whether the claim was freed (services stopped or not), and what was done, in words."""

    def free() -> bool:
        result = registry.release(
            state.slot_id,
            who,
            task=state.task,
            force=True,
            reason=reason[:1000],
            expect_commit=commit,
        )
        return released(registry, inventory, result, who).released

    slot = inventory.slots.get(state.slot_id) if inventory else None
    if not (inventory and slot and inventory.app.auto_release_stop):
        return (True, "released") if free() else (False, "already free")
    # Imported here: only a release that stops services needs Fabric.
    from staging_ops.deploy.stop import slot_locked, stop_slot

    try:
        with slot_locked(inventory, slot, who, action="release") as held:
            now = registry.get(state.slot_id)
            if not (
                now.claimed and now.task == state.task and now.commit == (commit or now.commit)
            ):
                # Released, or claimed or deployed anew, since it was judged: not ours to stop.
                return False, "skipped: the claim changed" if now.claimed else "already free"
            try:
                stopped = stop_slot(inventory, slot, who, held)
            except StagingError as exc:
                raise NotDone(f"stopping its services failed: {exc}") from None
            try:
                freed = free()
            except Conflict as exc:  # claimed anew in the moment since `now`
                return False, f"skipped: {exc} ({stopped})"
            return (True, f"released, {stopped}") if freed else (False, f"already free ({stopped})")
    except NotDone:
        raise
    except StagingError as exc:  # a deploy holds the lock (Conflict), the droplet is not reached
        raise NotDone(str(exc)) from None
