"""Deploy requests: the deploys and rollbacks the server runs itself, queued by the API or a
GitHub push (registry/deploy_queue.py keeps them, web/deploy_worker.py runs them).

The decisions are pure and here: which queued request a worker takes next, which ones a newer
request supersedes, when a running request's worker counts as gone (its lease expired) and
whether its request is taken again or failed. The queue applies them in one transaction."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from staging_ops.jsondoc import JSONObject

KINDS = ("deploy", "rollback")
VIAS = ("api", "push")
QUEUED, RUNNING, DONE, FAILED, SUPERSEDED = "queued", "running", "done", "failed", "superseded"
STATES = (QUEUED, RUNNING, DONE, FAILED, SUPERSEDED)
OPEN = (QUEUED, RUNNING)
# How long a worker's hold on a request lasts without a heartbeat (it beats every
# HEARTBEAT seconds): a worker killed with SIGKILL leaves its request to be taken again
# after this.
LEASE = timedelta(seconds=15)
HEARTBEAT = 0.5
# How long a push's deploy waits for a newer push of the same branch to supersede it: pushes
# in a row (a rebase pushed commit by commit, a burst of fix-ups) deploy the newest once.
PUSH_SETTLE = timedelta(seconds=1.5)
# Takes of one request: a request whose workers died this many times is failed, not retried.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class DeployRequest:
    """One row of marts.staging_deploy_requests."""

    id: int
    slot_id: int
    kind: str
    requested_by: str
    via: str
    state: str = QUEUED
    branch: str | None = None
    commit: str | None = None
    target: str | None = None
    task: str | None = None
    attempts: int = 0
    worker: str | None = None
    lease_until: datetime | None = None
    heartbeat_at: datetime | None = None
    requested_at: datetime | None = None
    not_before: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    step: str | None = None
    # Each step done, as StepRecord.as_json() wrote it into the row's JSON column.
    steps: list[JSONObject] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    # What the deploy or rollback returned (its as_dict()), as stored: the API shows it.
    result: JSONObject | None = None
    error: str | None = None
    superseded_by: int | None = None

    @property
    def finished(self) -> bool:
        return self.state not in OPEN

    def to_dict(self) -> JSONObject:
        values = asdict(self)
        for key, value in values.items():
            if isinstance(value, datetime):
                values[key] = value.isoformat()
        return values


@dataclass(frozen=True)
class Progress:
    """What a running request's row shows, as its worker writes it on each heartbeat and at
    the end: the step running now (None: none named yet), the steps done (each
    StepRecord.as_json()) and the last lines of its log."""

    step: str | None = None
    steps: list[JSONObject] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ClaimPlan:
    """What one worker's claim does, in one transaction: `take` (None: nothing to run now),
    running requests whose worker is gone taken back into the queue (`requeue`) or failed
    (`fail`), and queued requests a newer one for their slot supersedes (`supersede`: old id
    to the newer id)."""

    take: int | None = None
    requeue: tuple[int, ...] = ()
    fail: tuple[int, ...] = ()
    supersede: tuple[tuple[int, int], ...] = ()


def lease_expired(request: DeployRequest, now: datetime) -> bool:
    """Whether `request` runs on a worker that stopped beating (killed, hung, cut off)."""
    return (
        request.state == RUNNING and request.lease_until is not None and request.lease_until <= now
    )


def superseded(requests: list[DeployRequest]) -> list[tuple[int, int]]:
    """Each queued request that a newer queued request for the same slot replaces: (old id,
    newest id of its slot). The newest wish for a slot wins, deploy or rollback; a running
    request is never superseded (it runs to its end, the newer one after it)."""
    newest: dict[int, int] = {}
    for request in requests:
        if request.state == QUEUED:
            newest[request.slot_id] = max(newest.get(request.slot_id, 0), request.id)
    return [
        (r.id, newest[r.slot_id])
        for r in requests
        if r.state == QUEUED and r.id != newest[r.slot_id]
    ]


def plan_claim(
    requests: list[DeployRequest], now: datetime, max_attempts: int = MAX_ATTEMPTS
) -> ClaimPlan:
    """What a worker does with the open requests (queued and running, every slot's): expired
    leases first (taken back, or failed after `max_attempts` takes), then the newest queued
    request of each slot supersedes older ones, then the oldest such request of a slot with
    nothing running, and not waiting for its `not_before`, is taken (first come, first
    served across slots)."""
    requeue = [r.id for r in requests if lease_expired(r, now) and r.attempts < max_attempts]
    fail = [r.id for r in requests if lease_expired(r, now) and r.attempts >= max_attempts]
    gone = set(requeue) | set(fail)
    busy = {r.slot_id for r in requests if r.state == RUNNING and r.id not in gone}
    waiting = [
        r if r.id not in requeue else _queued(r)
        for r in requests
        if r.id not in fail and (r.state == QUEUED or r.id in requeue)
    ]
    replaced = superseded(waiting)
    out = {old for old, _ in replaced}
    ready = sorted(
        r.id
        for r in waiting
        if r.id not in out
        and r.slot_id not in busy
        and (r.not_before is None or r.not_before <= now)
    )
    return ClaimPlan(
        take=ready[0] if ready else None,
        requeue=tuple(requeue),
        fail=tuple(fail),
        supersede=tuple(replaced),
    )


def _queued(request: DeployRequest) -> DeployRequest:
    return DeployRequest(**{**asdict(request), "state": QUEUED})


def already_serving(request: DeployRequest, serving_commit: str | None) -> bool:
    """A push's deploy whose commit the slot already serves (an earlier request deployed the
    branch's head, which was this push or a newer one): nothing to do."""
    return (
        request.via == "push"
        and request.kind == "deploy"
        and bool(request.commit)
        and request.commit == serving_commit
    )


def progress_text(step_number: int, name: str) -> str:
    """The request's `step` while it runs: what the dashboard shows."""
    return f"running step {step_number}: {name}"
