"""The statements that change a claim, each run on the caller's transaction (`cur`).

Each one's deciding statement is a single UPDATE: the check (is the slot free? is this the
holder?) sits in its WHERE clause, so no other session can slip in between a check and a
write. When an UPDATE is refused, these read the slot again and slots/rules.py says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg2.errors

from staging_ops.errors import Conflict, StagingError
from staging_ops.registry.schema import compose, slot_columns, slot_state
from staging_ops.slots.model import ClaimResult, DeployRecord, ReleaseResult, SlotState
from staging_ops.slots.rules import (
    held_by_another_task,
    holds_another_slot,
    no_free_qa_slot,
    not_registered,
)


@dataclass(frozen=True)
class ClaimParams:
    """A claim's checked values, the statements' named parameters: the slot (None: the
    lowest free QA slot), the task, its owner and note, and the time to live in seconds."""

    slot: int | None
    task: str
    owner: str
    note: str | None
    ttl: int


@dataclass(frozen=True)
class ReleaseParams:
    """A release's checked terms, the statement's named parameters: who releases, the task
    it must be (None: any), whether the owner may be another, whether only an expired claim,
    and the commit the slot must still have (None: any)."""

    slot: int
    by: str
    task: str | None
    force: bool
    expired_only: bool
    commit: str | None


class Retry(Exception):
    """The transaction saw a concurrent change; run it again from the start."""


def fetch_slot(cur: Any, slot_id: int) -> SlotState:
    """One slot's row; BadInput if it is not registered."""
    cur.execute(compose("SELECT {cols} FROM {slots} WHERE slot_id = %s"), (slot_id,))
    row = cur.fetchone()
    if row is None:
        raise not_registered(slot_id)
    return slot_state(row)


def claim_slot(cur: Any, claim: ClaimParams, last: bool) -> ClaimResult:
    """Claim `claim.slot`; Retry when a concurrent change hides the reason for a refusal
    (unless this is the `last` attempt)."""
    # The holding task renews (owner and claimed_at kept); a free slot is taken — unless
    # the task already holds another slot. `claimed_at <> now()` tells a renewal from a
    # fresh claim, since now() is this transaction's start.
    try:
        cur.execute(
            compose(
                "UPDATE {slots} SET status = 'claimed', task = %(task)s,"
                " owner = CASE WHEN status = 'claimed' THEN owner ELSE %(owner)s END,"
                " note = CASE WHEN status = 'claimed' THEN coalesce(%(note)s, note)"
                "             ELSE %(note)s END,"
                " claimed_at = CASE WHEN status = 'claimed' THEN claimed_at ELSE now() END,"
                " ttl_seconds = %(ttl)s, expires_at = now() + make_interval(secs => %(ttl)s)"
                " WHERE slot_id = %(slot)s AND (status = 'free' OR task = %(task)s)"
                " AND NOT EXISTS (SELECT 1 FROM {slots} other WHERE other.task = %(task)s"
                "   AND other.status = 'claimed' AND other.slot_id <> %(slot)s)"
                " RETURNING {cols}, claimed_at <> now() AS renewed"
            ),
            asdict(claim),
        )
    except psycopg2.errors.UniqueViolation:
        # Same task, another slot, claimed concurrently: the index said no. Diagnose anew.
        raise Retry() from None
    row = cur.fetchone()
    if row is not None:
        return ClaimResult(slot_state(row), bool(row["renewed"]))
    # Refused: say which rule refused (the slot is read only if the task holds no other).
    refusal = holds_another_slot(
        claim.task, claim.slot, _held_by_task(cur, claim.task)
    ) or held_by_another_task(fetch_slot(cur, claim.slot), claim.task)
    if refusal is not None:
        raise refusal
    if last:
        raise StagingError(f"could not claim slot {claim.slot}: it kept changing")
    raise Retry()


def claim_auto(cur: Any, claim: ClaimParams) -> ClaimResult:
    """The task's own slot renewed, or else the lowest free QA slot."""
    # A task that already holds a slot gets that slot back, renewed: auto is idempotent.
    cur.execute(
        compose(
            "UPDATE {slots} SET ttl_seconds = %(ttl)s,"
            " expires_at = now() + make_interval(secs => %(ttl)s),"
            " note = coalesce(%(note)s, note)"
            " WHERE task = %(task)s AND status = 'claimed' RETURNING {cols}"
        ),
        asdict(claim),
    )
    row = cur.fetchone()
    if row is not None:
        return ClaimResult(slot_state(row), True)
    # Lowest free QA slot; SKIP LOCKED lets concurrent pickers take different slots
    # instead of queueing on the same row. Slot 10 (role 'staging') is never picked.
    try:
        cur.execute(
            compose(
                "UPDATE {slots} s SET status = 'claimed', task = %(task)s, owner = %(owner)s,"
                " note = %(note)s, claimed_at = now(), ttl_seconds = %(ttl)s,"
                " expires_at = now() + make_interval(secs => %(ttl)s)"
                " FROM (SELECT slot_id FROM {slots} WHERE status = 'free' AND role = 'qa'"
                "       ORDER BY slot_id LIMIT 1 FOR UPDATE SKIP LOCKED) pick"
                " WHERE s.slot_id = pick.slot_id RETURNING {scols}",
                scols=slot_columns("s"),
            ),
            asdict(claim),
        )
    except psycopg2.errors.UniqueViolation:
        raise Retry() from None  # the same task won elsewhere a moment ago: renew it
    row = cur.fetchone()
    if row is None:
        cur.execute(compose("SELECT count(*) AS n FROM {slots} WHERE role = 'qa'"))
        raise no_free_qa_slot(cur.fetchone()["n"])
    return ClaimResult(slot_state(row), False)


def _held_by_task(cur: Any, task: str) -> SlotState | None:
    cur.execute(
        compose("SELECT {cols} FROM {slots} WHERE task = %s AND status = 'claimed'"), (task,)
    )
    row = cur.fetchone()
    return slot_state(row) if row else None


def release_claim(cur: Any, terms: ReleaseParams) -> ReleaseResult | None:
    """The slot before and after its release, or None when the terms refused it."""
    # The check and the write are this one statement; the CTE locks the row first so
    # `before` is the version we actually released.
    cur.execute(
        compose(
            "WITH old AS (SELECT {cols} FROM {slots} WHERE slot_id = %(slot)s FOR UPDATE)"
            " UPDATE {slots} s SET status = 'free', task = NULL, owner = NULL, note = NULL,"
            " claimed_at = NULL, expires_at = NULL, ttl_seconds = NULL"
            " FROM old WHERE s.slot_id = old.slot_id AND s.status = 'claimed'"
            " AND (%(task)s::text IS NULL OR s.task = %(task)s)"
            " AND (%(force)s OR %(task)s::text IS NOT NULL OR s.owner = %(by)s)"
            " AND (NOT %(expired_only)s OR s.expires_at <= now())"
            " AND (%(commit)s::text IS NULL OR s.commit = %(commit)s)"
            " RETURNING to_jsonb(old) AS before, to_jsonb(s) AS after"
        ),
        asdict(terms),
    )
    row = cur.fetchone()
    if row is None:
        return None
    return ReleaseResult(SlotState.from_dict(row["before"]), SlotState.from_dict(row["after"]))


def record_deploy(cur: Any, deploy: DeployRecord) -> SlotState:
    """The slot with the deploy noted; Conflict when it is free or another task's (unless
    `serving`: then only what serves is noted, whatever the claim)."""
    cur.execute(
        compose(
            "UPDATE {slots} SET branch = %(branch)s, commit = %(commit)s,"
            " deployed_at = CASE WHEN %(serving)s AND status = 'claimed'"
            "   THEN deployed_at ELSE now() END,"
            " expires_at = CASE WHEN %(serving)s THEN expires_at"
            "   ELSE now() + make_interval(secs => ttl_seconds) END"
            " WHERE slot_id = %(slot_id)s AND (%(serving)s OR (status = 'claimed'"
            " AND (%(task)s::text IS NULL OR task = %(task)s))) RETURNING {cols}"
        ),
        asdict(deploy),
    )
    row = cur.fetchone()
    if row is not None:
        return slot_state(row)
    state = fetch_slot(cur, deploy.slot_id)
    slot = f"slot {state.slot_id} ({state.identifier})"
    if not state.claimed:
        raise Conflict(f"{slot} is free: claim it before recording a deploy")
    raise Conflict(f"{slot} is held by {state.holder_text()}")
