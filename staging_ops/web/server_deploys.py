"""Server-side deploys as the API and the webhooks ask for them: a request checked against
the registry and the app's repository, then queued (registry/deploy_queue.py) for the deploy
workers (deploy_worker.py). Every refusal is one line and queues nothing: a slot not in the
inventory (404), a free slot or one another task holds (409), a branch the repository does
not have (404: the named thing is not there)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from staging_ops.errors import BadInput, Conflict, StagingError
from staging_ops.inventory import Inventory, Slot
from staging_ops.registry.deploy_queue import DeployQueue, NewRequest
from staging_ops.slots.deploy_requests import PUSH_SETTLE, DeployRequest
from staging_ops.slots.model import SlotState, UnknownSlot, parse_branch, parse_task


class UnknownBranch(BadInput):
    """The app repository has no such branch (the API answers 404)."""

    code = "unknown_branch"


# A release directory's name (deploy/release.py: UTC time and commit).
RELEASE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,99}$")


def _remote_heads(url: str) -> dict[str, str]:
    from staging_ops.claims.branches import remote_heads

    return remote_heads(url)


@dataclass
class PushOutcome:
    """What a push did: the requests it queued, and why other slots got none."""

    queued: list[DeployRequest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        done = [f"deploy #{r.id} queued for slot {r.slot_id}" for r in self.queued]
        return "; ".join(done + self.notes) or "nothing queued"


@dataclass
class ServerDeploys:
    """The queue of one server, on its inventory. `heads` answers which branches the app's
    repository has ({branch: commit}); git ls-remote by default (claims/branches.py)."""

    inventory: Inventory
    queue: DeployQueue
    heads: Callable[[str], dict[str, str]] = field(default=_remote_heads)

    def slot(self, slot_id: int) -> Slot:
        slot = self.inventory.slots.get(slot_id)
        if slot is None:
            raise UnknownSlot(f"no slot {slot_id} in the inventory")
        return slot

    def _held(self, registry: Any, slot: Slot, task: str | None, what: str) -> SlotState:
        state = registry.get(slot.id)
        if not state.claimed:
            raise Conflict(f"{slot.identifier} is free: claim it before a {what}")
        if task and parse_task(task) != state.task:
            raise Conflict(
                f"{slot.identifier} is held by {state.holder_text()}, not {parse_task(task)}"
            )
        return state

    def request_deploy(
        self,
        registry: Any,
        slot_id: int,
        by: str,
        *,
        branch: str | None = None,
        task: str | None = None,
        via: str = "api",
    ) -> DeployRequest:
        """Queue a deploy of `branch` (default: the branch the slot serves) to the slot its
        holder (`task`, when given, must be it) keeps."""
        slot = self.slot(slot_id)
        state = self._held(registry, slot, task, "deploy")
        if branch is None:
            if not state.branch:
                # The slot's state, not the request, lacks it: a conflict, as a free slot is.
                raise Conflict(f"{slot.identifier} has no branch deployed yet: name one")
            branch = state.branch
        branch = parse_branch(branch)
        commit = self.head(branch)
        return self.queue.enqueue(
            NewRequest(slot.id, "deploy", by, via, branch=branch, commit=commit, task=state.task)
        )

    def head(self, branch: str) -> str:
        """The branch's commit in the app's repository; UnknownBranch if it has none."""
        url = self.inventory.app.repo_url
        try:
            heads = self.heads(url)
        except BadInput:
            raise
        except StagingError as exc:
            raise StagingError(f"cannot list the app repository's branches: {exc}") from None
        if branch not in heads:
            raise UnknownBranch(f"branch not found: {branch!r} in the app repository")
        return heads[branch]

    def push(
        self, registry: Any, branch: str, commit: str | None, actor: str | None
    ) -> PushOutcome:
        """A GitHub push of `commit` to `branch`: a deploy queued for every slot whose claim
        holds the branch (the branch its holder deployed last) and did not opt out
        (auto_deploy); a deleted branch (no commit) queues nothing. Queued requests of those
        slots are superseded, so pushes in a row deploy the newest once."""
        held = [s for s in registry.status() if s.claimed and s.branch == branch]
        outcome = PushOutcome()
        if not held:
            outcome.notes.append(f"no slot holds {branch}")
        for state in held:
            where = f"slot {state.slot_id}"
            if state.slot_id not in self.inventory.slots:
                outcome.notes.append(f"{where} is not in this server's inventory")
            elif commit is None:
                outcome.notes.append(f"{where}: branch {branch} was deleted, nothing to deploy")
            elif state.claimed_at and not self.queue.auto_deploy(state.slot_id, state.claimed_at):
                outcome.notes.append(f"{where}: {state.task}'s claim has auto_deploy off")
            else:
                queued = self.queue.enqueue(
                    NewRequest(
                        state.slot_id,
                        "deploy",
                        actor or "github",
                        "push",
                        branch=branch,
                        commit=commit,
                        task=state.task,
                        settle=PUSH_SETTLE,
                    )
                )
                outcome.queued.append(queued)
        return outcome

    def request_rollback(
        self,
        registry: Any,
        slot_id: int,
        by: str,
        *,
        release: str | None = None,
        task: str | None = None,
    ) -> DeployRequest:
        """Queue a rollback of the held slot to `release` (default: the previous verified
        one; the worker's rollback checks it exists and is not marked bad)."""
        slot = self.slot(slot_id)
        state = self._held(registry, slot, task, "rollback")
        if release is not None and not RELEASE.fullmatch(release):
            raise BadInput(f"release {release!r} is not a release name")
        return self.queue.enqueue(
            NewRequest(slot.id, "rollback", by, "api", target=release, task=state.task)
        )
