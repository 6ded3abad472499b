"""The slot registry in PostgreSQL: every claim operation on marts.staging_slots.

Each operation is one short transaction whose deciding statement is a single UPDATE
(claim_queries.py), so no other session can slip in between a check and a write. The database
enforces the rules as well (CHECK constraints, a partial unique index for "one slot per
task"), and a trigger writes every change to the append-only marts.staging_slot_events in the
same transaction (history.py reads it). The rules themselves are stated in slots/rules.py;
when an UPDATE is refused, that module says why.

The pool, its transactions and the read cache: pool.py; connections and their errors: dsn.py;
table names and query composition: schema.py; the schema and the slot rows: migrator.py.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from staging_ops.errors import BadInput, StagingError
from staging_ops.registry import claim_queries
from staging_ops.registry.changes import MAX_AGE_SECONDS, ReadCache
from staging_ops.registry.claim_queries import ClaimParams, ReleaseParams, Retry, fetch_slot
from staging_ops.registry.history import insert_failed_deploy, select_history
from staging_ops.registry.pool import Connections
from staging_ops.registry.schema import compose, slot_state
from staging_ops.slots.model import (
    ClaimResult,
    DeployRecord,
    ReleaseResult,
    ReleaseTerms,
    SlotEvent,
    SlotRegistry,
    SlotState,
    parse_branch,
    parse_commit,
    parse_task,
)
from staging_ops.slots.rules import release_not_allowed, release_refusal

# How often a claim is retried when a concurrent session changed the picture between our
# UPDATE and our diagnosis (rare; each retry is a fresh transaction).
ATTEMPTS = 3


class PostgresRegistry(SlotRegistry):
    """SlotRegistry on a PostgreSQL database (a pool, so a web server's threads can share it).

    `via` names the channel recorded with each event ("cli", "api:<token subject>").
    With `cache_reads` (long-running servers), `status()` and `get()` answer from memory until
    the table changes: see changes.py (`shared_stamp`: the file a server's processes
    share so that each sees the others' writes at once).
    """

    def __init__(
        self,
        dsn: str,
        *,
        max_connections: int = 1,
        via: str = "cli",
        cache_reads: bool = False,
        cache_max_age: float = MAX_AGE_SECONDS,
        shared_stamp: str | os.PathLike[str] | None = None,
    ) -> None:
        self.via = via
        self._db = Connections(
            dsn,
            max_connections=max_connections,
            cache_reads=cache_reads,
            cache_max_age=cache_max_age,
            shared_stamp=shared_stamp,
        )
        self.dsn = dsn
        self.target = self._db.target

    @property
    def _cache(self) -> ReadCache[tuple[SlotState, ...]] | None:
        return self._db.cache

    def acting_via(self, channel: str) -> PostgresRegistry:
        """The same registry (same pool), recording `channel` as the events' `via`."""
        clone = copy.copy(self)  # once per API request: no new pool, no DSN parsing
        clone.via = channel
        return clone

    def close(self) -> None:
        self._db.close()

    # -- reads

    def status(self) -> Sequence[SlotState]:
        """Every slot, by id. With `cache_reads` the same tuple is returned until a change."""
        return self._db.cached(self._load_status)

    def _load_status(self) -> tuple[SlotState, ...]:
        with self._db.read() as cur:
            cur.execute(compose("SELECT {cols} FROM {slots} ORDER BY slot_id"))
            return tuple(slot_state(row) for row in cur.fetchall())

    def get(self, slot_id: int) -> SlotState:
        if self._db.cache is not None:
            for state in self.status():
                if state.slot_id == slot_id:
                    return state
        with self._db.read() as cur:
            return fetch_slot(cur, slot_id)

    def history(self, slot_id: int | None = None, limit: int = 50) -> list[SlotEvent]:
        if not 1 <= limit <= 10000:
            raise BadInput("limit must be between 1 and 10000")
        with self._db.read() as cur:
            return select_history(cur, slot_id, limit)

    # -- claims

    def claim(
        self, slot_id: int | None, task: str, owner: str, ttl: timedelta, note: str | None = None
    ) -> ClaimResult:
        task = parse_task(task)
        params = ClaimParams(slot_id, task, owner, note, int(ttl.total_seconds()))
        for attempt in range(ATTEMPTS):
            try:
                with self._db.transaction(self.via, actor=owner, action="claim") as cur:
                    if slot_id is None:
                        return claim_queries.claim_auto(cur, params)
                    last = attempt == ATTEMPTS - 1
                    return claim_queries.claim_slot(cur, params, last=last)
            except Retry:
                continue
        raise StagingError(f"could not claim for {task}: the registry kept changing; try again")

    def apply_release(self, slot_id: int, by: str, terms: ReleaseTerms) -> ReleaseResult:
        task = parse_task(terms.task) if terms.task else None
        commit = parse_commit(terms.expect_commit) if terms.expect_commit else None
        params = ReleaseParams(slot_id, by, task, terms.force, terms.expired_only, commit)
        detail = terms.reason or ""
        with self._db.transaction(self.via, actor=by, action=terms.action, detail=detail) as cur:
            released = claim_queries.release_claim(cur, params)
            if released is not None:
                return released
            state = fetch_slot(cur, slot_id)
        if not state.claimed:
            return ReleaseResult(state, state)  # already free: nothing to do
        # The database refused. It judged the expiry by its own clock, so `expired=False`:
        # when expired_only refused, the claim was not expired (unless a check before that one
        # names another reason); a claim that changed since the UPDATE is not ours to release.
        raise release_refusal(
            state,
            by,
            task=task,
            force=terms.force,
            expired_only=terms.expired_only,
            expect_commit=commit,
            expired=False,
        ) or release_not_allowed(state)

    def apply_deploy(self, deploy: DeployRecord) -> SlotState:
        task = parse_task(deploy.task) if deploy.task else None
        branch, commit = parse_branch(deploy.branch), parse_commit(deploy.commit)
        checked = replace(deploy, branch=branch, commit=commit, task=task)
        detail = f"{branch}@{commit[:12]}"
        if deploy.serving:
            detail += " (serving, claim untouched)"
        with self._db.transaction(self.via, actor=deploy.by, action="deploy", detail=detail) as cur:
            return claim_queries.record_deploy(cur, checked)

    def record_failed_deploy(
        self, slot_id: int, branch: str, commit: str, by: str, step: str, serving: str
    ) -> None:
        with self._db.transaction(self.via) as cur:
            fetch_slot(cur, slot_id)  # an unknown slot is BadInput, as everywhere
            insert_failed_deploy(cur, self.via, slot_id, branch, commit, by, step, serving)
