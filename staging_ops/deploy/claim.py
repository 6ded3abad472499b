"""The `claim` step: the claim rules of deploy and rollback, decided before the droplet is
touched. The decisions are pure (a slot's registry row in, a ClaimCheck out, or BadInput /
Conflict); ensure_claim and check_rollback_claim read the row and write the claim they decide.

A deploy needs the slot held by its task (or by the operator, with no task known) and renews
that claim; a free slot is claimed for the task. --force deploys or rolls back another task's
slot, the claim staying theirs. Rollback never claims: a free slot needs --force.

When: the rules are checked (a read) before the droplet is touched; the claim is written
(`hold claim`) only under the slot's deploy lock and once the branch's commit is known, so a
deploy refused by the lock (a `release --stop` running) or of a branch that does not exist
changes nothing. The claim is read again under the lock just before the switch (`fence`), and
the record is conditional on it: a claim released meanwhile (plain `release` takes no lock)
stops the deploy before the switch, or, if it went after the switch, the registry is told what
serves (`record_deploy(serving=True)`) and the deploy exits 3 saying so.

A renewal never becomes a new claim: a slot its task held at the check and that was released
before `hold claim` (its branch merged, a webhook or the reap freeing it) is not claimed again
for that branch. The deploy stops there (Conflict, exit 3, nothing switched), saying why the
slot was released when its history tells (`released_during_run`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from staging_ops.errors import BadInput, Conflict
from staging_ops.inventory import Slot
from staging_ops.slots.model import SlotRegistry, SlotState, parse_task, parse_ttl

CLAIM_TTL = "7d"
# A release's reason that names its branch merged or deleted, as written by the GitHub webhook
# ("PR #42 merged (feat-x) https://…", "branch feat-x deleted on GitHub …") and the reap
# ("branch feat-x is merged into main", "branch feat-x was deleted"); BRANCH is filled in.
_BRANCH_GONE = r"(?:merged \(BRANCH\)|^branch BRANCH is merged|^branch BRANCH (?:was )?deleted)"
RELEASES = ("release", "reap")


@dataclass(frozen=True)
class ClaimCheck:
    """What the claim rules allow.

    `task` is the claim the registry must still hold when the deploy is recorded (the holder's,
    also under --force: the claim stays theirs); `record` is False for a forced run on a free
    slot, which the registry cannot note (it records deploys on claimed slots only); `claim` is
    the (task, owner) to claim the slot for first (a new claim or the holder's, renewed)."""

    detail: str
    task: str | None = None
    record: bool = True
    claim: tuple[str | None, str] | None = None
    # The task held the slot at the check: `hold claim` renews it, never claims it anew.
    renew: bool = False


def deploy_claim(
    state: SlotState, slot: Slot, task: str | None, operator: str, force: bool
) -> ClaimCheck:
    """Deploy's rules for the slot's row `state`; `task` already parsed (or None)."""
    if state.claimed:
        return holder_check(state, slot, task, operator, force, "deploy")
    if not task:
        raise BadInput(
            f"{slot.identifier} is free and no task is known: pass --task JA-123 or deploy a "
            "branch named after its Linear issue (e.g. alice/ja-123-search)"
        )
    return ClaimCheck(f"free: for {task} ({operator})", task=task, claim=(task, operator))


def rollback_claim(
    state: SlotState, slot: Slot, task: str | None, operator: str, force: bool
) -> ClaimCheck:
    """Rollback's rules, deploy's without claiming: a free slot or another task's slot is
    refused unless --force. A renewal it allows is not made (rollback claims nothing)."""
    if state.claimed:
        check = holder_check(state, slot, task, operator, force, "rollback")
        return ClaimCheck(check.detail, task=check.task)
    if not force:
        raise Conflict(
            f"{slot.identifier} is free: claim it first (invoke claim --slot {slot.id} --task "
            "JA-123) or pass --force"
        )
    return ClaimCheck("free; rolling back anyway (--force), the slot stays free", record=False)


def holder_check(
    state: SlotState, slot: Slot, task: str | None, operator: str, force: bool, what: str
) -> ClaimCheck:
    """A claimed slot: whose run this is (the holder's claim renewed), or a Conflict unless
    --force (the claim left theirs)."""
    mine = state.task == task if task else state.owner == operator
    if mine:
        return ClaimCheck(
            f"held by {state.task}",
            task=state.task,
            claim=(state.task, state.owner or operator),
            renew=True,
        )
    if force:
        return ClaimCheck(
            f"held by {state.task} ({state.owner}); {what} anyway (--force)", task=state.task
        )
    raise Conflict(
        f"{slot.identifier} is held by {state.holder_text()}: pass --task {state.task} if "
        f"this {what} is for it, or --force"
    )


def check_deploy_claim(
    registry: SlotRegistry, slot: Slot, task: str | None, operator: str, force: bool
) -> ClaimCheck:
    """Deploy's `claim` step: a bad --task or a conflict raises; only reads the registry (the
    claim decided is written by `hold claim`)."""
    task = parse_task(task) if task else None
    return deploy_claim(registry.get(slot.id), slot, task, operator, force)


def hold(registry: SlotRegistry, slot: Slot, check: ClaimCheck, branch: str) -> str:
    """Write the claim `check` decided (new, or the holder's renewed): a Conflict if another
    task took the slot since it was checked, or if the claim to renew was released meanwhile
    (the deploy's `branch` merged, say: claiming the freed slot again would undo that)."""
    if not check.claim:
        return f"{check.task}'s claim, left as it is (--force)"
    task, owner = check.claim
    if check.renew:
        state = registry.get(slot.id)
        if lost(state, check):
            raise Conflict(released_during_run(registry, slot, check, branch, state))
    result = registry.claim(slot.id, task, owner, parse_ttl(CLAIM_TTL))
    if check.renew and not result.renewed:
        # Released in the moment between the read and the claim: the claim just made is a new
        # one on a freed slot. Undone at once, conditional on being still ours.
        message = released_during_run(registry, slot, check, branch, result.slot)
        registry.release(
            slot.id,
            owner,
            task=task,
            force=True,
            reason="a deploy's renewal found the slot released meanwhile: not claimed again",
        )
        raise Conflict(message)
    return f"{task}'s claim renewed" if result.renewed else f"claimed for {task} by {owner}"


def branch_gone(reason: str, branch: str) -> str | None:
    """ "merged" or "deleted" when a release's `reason` says `branch` was, else None."""
    found = re.search(_BRANCH_GONE.replace("BRANCH", re.escape(branch)), reason)
    if not found:
        return None
    return "merged" if "merged" in found.group(0) else "deleted"


def released_during_run(
    registry: SlotRegistry, slot: Slot, check: ClaimCheck, branch: str, state: SlotState
) -> str:
    """The line a deploy stops with when the claim it stood on was released during the run:
    the branch merged (or deleted) and the slot released, when the slot's newest release says
    so, else the claim released."""
    release = next((e for e in registry.history(slot.id, 20) if e.action in RELEASES), None)
    detail = (release.detail or "") if release else ""
    what = branch_gone(detail, branch)
    now = f"held by {state.holder_text()}" if state.claimed else "free"
    if release and what:
        return (
            f"{slot.identifier}: branch {branch} was {what} and the slot released during this "
            f"run (via {release.via}: {detail}); nothing was switched, and the slot is not "
            f"claimed again for it (it is {now})"
        )
    return (
        f"{slot.identifier}: {check.task}'s claim was released during this run (the slot is "
        f"{now}); nothing was switched, the previous release keeps serving"
    )


def lost(state: SlotState, check: ClaimCheck) -> bool:
    """Whether the claim `check` stands on is gone from `state`: released, or another task's
    now. A run that stood on no claim (forced on a free slot) loses none."""
    return bool(check.task) and not (state.claimed and state.task == check.task)


def fence(registry: SlotRegistry, slot: Slot, check: ClaimCheck, branch: str) -> None:
    """Just before the switch, under the lock: the claim must still be the one checked, or
    the run stops with nothing switched (Conflict, exit 3)."""
    state = registry.get(slot.id)
    if lost(state, check):
        raise Conflict(released_during_run(registry, slot, check, branch, state))


def check_rollback_claim(
    registry: SlotRegistry, slot: Slot, task: str | None, operator: str, force: bool
) -> ClaimCheck:
    """Rollback's claim step: only reads the registry."""
    task = parse_task(task) if task else None
    return rollback_claim(registry.get(slot.id), slot, task, operator, force)
