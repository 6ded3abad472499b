"""`invoke reap`: free claims past their expiry and claims whose branch has landed or gone.

`plan_reap` is the decision (slot states, the clock and what git said in; what to free, and
why, out); `find_reapable` asks git only about the branches that decision needs; `reap` frees
what was found, each release conditional on the claim still being the one that was judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from staging_ops.errors import Conflict, StagingError
from staging_ops.integrations import released
from staging_ops.jsondoc import JSONObject
from staging_ops.slots.model import MAIN_BRANCH, SlotRegistry, SlotState, format_duration
from staging_ops.slots.owner import owner_or_default

# For annotations only: `invoke status` imports this module (through view.py), and git's
# module is loaded only when reap asks git.
if TYPE_CHECKING:
    from staging_ops.claims.branches import BranchFacts
    from staging_ops.inventory import Inventory


@dataclass
class ReapItem:
    """One claim reap frees (or would free), and why."""

    slot: SlotState
    reason: str
    expired: bool
    outcome: str = "would release"

    def to_dict(self) -> JSONObject:
        return {
            "slot": self.slot.slot_id,
            "identifier": self.slot.identifier,
            "task": self.slot.task,
            "owner": self.slot.owner,
            "branch": self.slot.branch,
            "reason": self.reason,
            "outcome": self.outcome,
        }


@dataclass
class ReapReport:
    """What reap found (and did); `problem` says why the branch checks could not run (the
    expired claims were reaped all the same)."""

    items: list[ReapItem]
    problem: str | None = None


def deployed_by_holder(state: SlotState) -> bool:
    """Whether the slot's branch is this claim's: the row keeps the branch of the last deploy
    across releases, so a claim that has not deployed yet still shows its predecessor's."""
    return bool(
        state.branch
        and state.deployed_at
        and state.claimed_at
        and state.deployed_at >= state.claimed_at
    )


def judged_by_branch(states: Sequence[SlotState], now: datetime) -> list[SlotState]:
    """The unexpired claims whose own deployed branch (other than main) git must judge."""
    return [
        s
        for s in states
        if s.claimed and not s.expired(now) and deployed_by_holder(s) and s.branch != MAIN_BRANCH
    ]


def plan_reap(
    states: Sequence[SlotState],
    now: datetime,
    branches: BranchFacts | None = None,
    problem: str | None = None,
) -> ReapReport:
    """Claims past their expiry, and claims whose (own) branch is merged into main or deleted.

    + branches: what git said of the branches `judged_by_branch` names (None: not asked,
      because none needed judging, or because git could not be asked)
    + problem: why git could not be asked; the expired claims are reaped all the same
    """
    claimed = [s for s in states if s.claimed]
    items = [
        ReapItem(s, f"expired {_ago(now - s.expires_at)} ago", True)
        for s in claimed
        if s.expired(now) and s.expires_at
    ]
    if branches is None:
        return ReapReport(items, problem)
    for state in judged_by_branch(states, now):
        branch = state.branch or ""
        if not branches.exists(branch):
            items.append(ReapItem(state, f"branch {branch} was deleted", False))
        elif branch in branches.merged:
            items.append(ReapItem(state, f"branch {branch} is merged into main", False))
    return ReapReport(sorted(items, key=lambda item: item.slot.slot_id))


def find_reapable(states: Sequence[SlotState], repo_url: str, now: datetime) -> ReapReport:
    """plan_reap, with git asked (`git ls-remote` and a throwaway fetch) only when some claim
    is judged by its branch."""
    to_judge = judged_by_branch(states, now)
    if not to_judge:
        return plan_reap(states, now)
    from staging_ops.claims.branches import branch_facts

    try:
        facts = branch_facts(repo_url, [s.branch for s in to_judge if s.branch])
    except StagingError as exc:
        # The expired claims need no git: reap them anyway, and say what was not checked.
        return plan_reap(states, now, problem=f"branches not checked: {exc}")
    return plan_reap(states, now, facts)


def reap(
    registry: SlotRegistry,
    inventory: Inventory,
    *,
    check: bool = False,
    by: str | None = None,
    now: datetime | None = None,
) -> ReapReport:
    """Free what find_reapable finds (or only report it with `check`). Each release is
    conditional on the claim still being the one we judged (same task; for an expired claim,
    still expired; for a branch reason, still the commit we judged): a claim renewed,
    re-taken or deployed again meanwhile is skipped, not released."""
    now = now or datetime.now(UTC)
    report = find_reapable(registry.status(), inventory.app.repo_url, now)
    if check:
        return report
    who = owner_or_default(by)
    for item in report.items:
        try:
            result = registry.release(
                item.slot.slot_id,
                who,
                task=item.slot.task,
                force=True,
                expired_only=item.expired,
                action="reap",
                reason=item.reason,
                expect_commit=None if item.expired else item.slot.commit,
            )
            released(registry, inventory, result, who)
            item.outcome = "released" if result.released else "already free"
        except Conflict as exc:
            item.outcome = f"skipped: {exc}"
    return report


def _ago(delta: timedelta) -> str:
    return format_duration(max(delta, timedelta(0)))
