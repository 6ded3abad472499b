"""The claim rules, stated once, as pure functions of slot states (no clock, database or host).

- Slots of role `qa` (1-9) are for QA; the slot of role `staging` (10) is the shared staging
  slot, which is claimed only by its number.
- One task holds at most one slot.
- `auto` takes the lowest free QA slot, never the staging slot; a task that already holds a
  slot gets that one back, renewed (so `auto` can be repeated).
- A claim by the task that holds the slot renews it: a new TTL and expiry; the owner and the
  time it was claimed are kept, and the note too unless a new one is given.
- A claim is expired from its `expires_at` on (`SlotState.expired`); `reap` frees it.
- A release is allowed for the claim's owner, for whoever names its task, or with `force`; a
  task named is a precondition as well (the claim must still be that task's, even forced).
  Releasing a free slot does nothing and is never refused.

PostgreSQL enforces these atomically (registry/postgres.py: each rule is in the WHERE clause of
one UPDATE, and a partial unique index keeps one slot per task), so two sessions can never both
pass a check. When the database refuses, the registry asks this module why, and the operator
reads the rule that refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from staging_ops.errors import Conflict
from staging_ops.slots.model import HoldsAnotherSlot, SlotState, UnknownSlot, utc_text

QA_ROLE = "qa"
STAGING_ROLE = "staging"


def slot_held_by(states: Iterable[SlotState], task: str) -> SlotState | None:
    """The slot `task` holds, if any (one at most)."""
    return next((s for s in states if s.claimed and s.task == task), None)


def auto_pick(states: Iterable[SlotState]) -> SlotState | None:
    """The slot `claim --slot auto` takes for a task that holds none: the lowest free QA slot
    (never the staging slot), or None when every QA slot is claimed."""
    free_qa = (s for s in states if s.status == "free" and s.role == QA_ROLE)
    return min(free_qa, key=lambda s: s.slot_id, default=None)


def not_registered(slot_id: int) -> UnknownSlot:
    """A slot the registry has no row for (the inventory was not migrated since it changed)."""
    return UnknownSlot(
        f"slot {slot_id} is not in the registry "
        "(is the inventory migrated? `invoke registry.migrate`)"
    )


def holds_another_slot(task: str, slot_id: int, held: SlotState | None) -> HoldsAnotherSlot | None:
    """One slot per task: the refusal when `task` already holds a slot other than `slot_id`."""
    if held is None or held.slot_id == slot_id:
        return None
    return HoldsAnotherSlot(
        f"task {task} already holds slot {held.slot_id} ({held.identifier}); "
        f"release it first: invoke release --slot {held.slot_id}"
    )


def held_by_another_task(target: SlotState, task: str) -> Conflict | None:
    """The refusal when `target` is claimed by a task other than `task`."""
    if target.claimed and target.task != task:
        return Conflict(
            f"slot {target.slot_id} ({target.identifier}) is held by {target.holder_text()}"
        )
    return None


def no_free_qa_slot(qa_slots: int) -> Conflict:
    """The refusal of `auto` when all `qa_slots` QA slots are claimed."""
    return Conflict(
        f"no free QA slot: all {qa_slots} QA slots are claimed "
        "(`invoke status` shows by whom; `invoke reap` frees stale ones)"
    )


@dataclass(frozen=True)
class ClaimDecision:
    """What a claim does: take `slot_id` afresh, or renew it (`renews`); or `refusal` says
    why not (then `slot_id` is the slot asked for, None for auto)."""

    slot_id: int | None
    renews: bool = False
    refusal: Conflict | None = None


def decide_claim(states: Iterable[SlotState], slot_id: int | None, task: str) -> ClaimDecision:
    """The whole claim rule for `task` asking for `slot_id` (None: auto), given every slot."""
    states = list(states)
    held = slot_held_by(states, task)
    if slot_id is None:
        if held is not None:
            return ClaimDecision(held.slot_id, renews=True)
        pick = auto_pick(states)
        if pick is None:
            qa_slots = sum(1 for s in states if s.role == QA_ROLE)
            return ClaimDecision(None, refusal=no_free_qa_slot(qa_slots))
        return ClaimDecision(pick.slot_id)
    refusal: Conflict | None = holds_another_slot(task, slot_id, held)
    if refusal is not None:
        return ClaimDecision(slot_id, refusal=refusal)
    target = next((s for s in states if s.slot_id == slot_id), None)
    if target is None:
        return ClaimDecision(slot_id, refusal=not_registered(slot_id))
    refusal = held_by_another_task(target, task)
    return ClaimDecision(slot_id, renews=target.claimed and refusal is None, refusal=refusal)


def release_not_allowed(state: SlotState) -> Conflict:
    """The refusal when someone who is neither the owner nor names the task, without
    `force`, releases `state`'s claim."""
    return Conflict(
        f"slot {state.slot_id} ({state.identifier}) is held by {state.holder_text()}; "
        f"only its owner or task may release it (or use --force)"
    )


def release_refusal(
    state: SlotState,
    by: str,
    *,
    task: str | None = None,
    force: bool = False,
    expired_only: bool = False,
    expect_commit: str | None = None,
    expired: bool,
) -> Conflict | None:
    """Why `by` may not release the claim on `state`, or None when the rules allow it.

    + task: the task the caller names (normalised): proves the right to release, and must
      still be the holder's
    + force: release another's claim (the named task must still match)
    + expired_only: only a claim that is past its expiry (reap)
    + expect_commit: only a claim whose deployed commit is still this one (reap)
    + expired: whether the claim is past its expiry (the caller's clock: the database's)

    The checks run in the order an operator needs them: whose claim it is now, what was
    deployed, its expiry, and last who asks.
    """
    if not state.claimed:
        return None
    if task and state.task != task:
        return Conflict(
            f"slot {state.slot_id} ({state.identifier}) is now held by "
            f"{state.holder_text()}, not by {task}"
        )
    if expect_commit and state.commit != expect_commit:
        return Conflict(
            f"slot {state.slot_id} ({state.identifier}) was deployed again "
            f"({state.branch or '?'} at {(state.commit or '?')[:12]}) since it was judged"
        )
    if expired_only and not expired:
        return Conflict(
            f"the claim on slot {state.slot_id} ({state.identifier}) is not expired "
            f"(expires {utc_text(state.expires_at)})"
        )
    if not (force or task or state.owner == by):
        return release_not_allowed(state)
    return None
