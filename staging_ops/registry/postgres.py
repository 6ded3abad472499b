"""The slot registry in PostgreSQL: every claim operation on marts.staging_slots.

Each operation is one short transaction whose deciding statement is a single UPDATE: the
check (is the slot free? is this the holder?) sits in its WHERE clause, so no other session
can slip in between a check and a write. The database enforces the rules as well (CHECK
constraints, a partial unique index for "one slot per task"), and a trigger writes every
change to the append-only marts.staging_slot_events in the same transaction. The rules
themselves are stated in claims/rules.py; when an UPDATE is refused, that module says why.

Connections and their errors: dsn.py; table names and query composition: schema.py; the
schema and the slot rows: migrator.py.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, timedelta
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.pool
from psycopg2 import sql

from staging_ops.claims.model import (
    ClaimResult,
    ReleaseResult,
    SlotEvent,
    SlotState,
    parse_branch,
    parse_commit,
    parse_task,
)
from staging_ops.claims.rules import (
    held_by_another_task,
    holds_another_slot,
    no_free_qa_slot,
    not_registered,
    release_not_allowed,
    release_refusal,
)
from staging_ops.errors import BadInput, Conflict, StagingError
from staging_ops.registry.changes import MAX_AGE_SECONDS, ReadCache, SharedStamp
from staging_ops.registry.dsn import (
    connect,
    connect_kwargs,
    database_failure,
    describe_dsn,
    unreachable,
)
from staging_ops.registry.failures import insert_failed_deploy
from staging_ops.registry.schema import (
    EVENT_COLUMNS,
    EVENTS,
    DictRowCursor,
    compose,
    set_context,
    slot_columns,
    slot_state,
)

# How often a claim is retried when a concurrent session changed the picture between our
# UPDATE and our diagnosis (rare; each retry is a fresh transaction).
ATTEMPTS = 3


class PostgresRegistry:
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
        self.dsn = dsn
        self.via = via
        self.target = describe_dsn(dsn)
        self._cache: ReadCache[tuple[SlotState, ...]] | None = None
        if cache_reads:
            shared = SharedStamp(shared_stamp) if shared_stamp else None
            self._cache = ReadCache(lambda: connect(dsn), shared=shared, max_age=cache_max_age)
        try:
            self._pool = psycopg2.pool.ThreadedConnectionPool(
                1, max_connections, **connect_kwargs(dsn)
            )
        except psycopg2.OperationalError as exc:
            raise unreachable(dsn, exc) from None
        # ThreadedConnectionPool raises instead of waiting when it is exhausted; the semaphore
        # makes extra threads wait for a connection instead.
        self._free_connections = threading.BoundedSemaphore(max_connections)

    def acting_via(self, channel: str) -> PostgresRegistry:
        """The same registry (same pool), recording `channel` as the events' `via`."""
        clone = copy.copy(self)  # once per API request: no new pool, no DSN parsing
        clone.via = channel
        return clone

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
        if not self._pool.closed:
            self._pool.closeall()

    @contextmanager
    def _connection(self, autocommit: bool) -> Iterator[Any]:
        """A pooled connection; database errors leave as one-line StagingErrors."""
        with self._free_connections:
            try:
                conn = self._pool.getconn()
            except psycopg2.OperationalError as exc:
                raise unreachable(self.dsn, exc) from None
            broken = False
            try:
                conn.autocommit = autocommit
                yield conn
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                broken = True
                raise unreachable(self.dsn, exc) from None
            except psycopg2.Error as exc:
                raise database_failure(self.dsn, exc) from None
            finally:
                self._pool.putconn(conn, close=broken or conn.closed != 0)

    @contextmanager
    def _transaction(self, actor: str = "", action: str = "", detail: str = "") -> Iterator[Any]:
        """One transaction: commit on success, rollback on error. The event trigger learns
        who acts, how and why from the settings made first."""
        try:
            with (
                self._connection(autocommit=False) as conn,
                conn,
                conn.cursor(cursor_factory=DictRowCursor) as cur,
            ):
                if actor or action:
                    set_context(cur, actor=actor, via=self.via, action=action, detail=detail)
                yield cur
        finally:
            # After the commit: this process's next read must see its own write, without
            # waiting for the notification to come back.
            if self._cache is not None:
                self._cache.invalidate()

    @contextmanager
    def _read(self) -> Iterator[Any]:
        """A single read statement: autocommit, so no BEGIN/COMMIT round trips around it."""
        with (
            self._connection(autocommit=True) as conn,
            conn.cursor(cursor_factory=DictRowCursor) as cur,
        ):
            yield cur

    # -- reads

    def status(self) -> Sequence[SlotState]:
        """Every slot, by id. With `cache_reads` the same tuple is returned until a change."""
        if self._cache is not None:
            return self._cache.get(self._load_status)
        return self._load_status()

    def _load_status(self) -> tuple[SlotState, ...]:
        with self._read() as cur:
            cur.execute(compose("SELECT {cols} FROM {slots} ORDER BY slot_id"))
            return tuple(slot_state(row) for row in cur.fetchall())

    def get(self, slot_id: int) -> SlotState:
        if self._cache is not None:
            for state in self.status():
                if state.slot_id == slot_id:
                    return state
        with self._read() as cur:
            return self._get(cur, slot_id)

    def _get(self, cur: Any, slot_id: int) -> SlotState:
        cur.execute(compose("SELECT {cols} FROM {slots} WHERE slot_id = %s"), (slot_id,))
        row = cur.fetchone()
        if row is None:
            raise not_registered(slot_id)
        return slot_state(row)

    def history(self, slot_id: int | None = None, limit: int = 50) -> list[SlotEvent]:
        if not 1 <= limit <= 10000:
            raise BadInput("limit must be between 1 and 10000")
        with self._read() as cur:
            cur.execute(
                sql.SQL(
                    "SELECT {cols} FROM {events} WHERE %(slot)s::integer IS NULL "
                    "OR slot_id = %(slot)s ORDER BY id DESC LIMIT %(limit)s"
                ).format(
                    cols=sql.SQL(", ").join(map(sql.Identifier, EVENT_COLUMNS)), events=EVENTS
                ),
                {"slot": slot_id, "limit": limit},
            )
            return [SlotEvent(**{**row, "at": row["at"].astimezone(UTC)}) for row in cur.fetchall()]

    # -- claims

    def claim(
        self, slot_id: int | None, task: str, owner: str, ttl: timedelta, note: str | None = None
    ) -> ClaimResult:
        task = parse_task(task)
        params = {
            "slot": slot_id,
            "task": task,
            "owner": owner,
            "note": note,
            "ttl": int(ttl.total_seconds()),
        }
        for attempt in range(ATTEMPTS):
            try:
                with self._transaction(actor=owner, action="claim") as cur:
                    if slot_id is None:
                        return self._claim_auto(cur, params)
                    return self._claim_slot(cur, params, last=attempt == ATTEMPTS - 1)
            except _Retry:
                continue
        raise StagingError(f"could not claim for {task}: the registry kept changing; try again")

    def _claim_slot(self, cur: Any, params: dict[str, Any], last: bool) -> ClaimResult:
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
                params,
            )
        except psycopg2.errors.UniqueViolation:
            # Same task, another slot, claimed concurrently: the index said no. Diagnose anew.
            raise _Retry() from None
        row = cur.fetchone()
        if row is not None:
            return ClaimResult(slot_state(row), bool(row["renewed"]))
        # Refused: say which rule refused (the slot is read only if the task holds no other).
        refusal = holds_another_slot(
            params["task"], params["slot"], self._held_by_task(cur, params["task"])
        ) or held_by_another_task(self._get(cur, params["slot"]), params["task"])
        if refusal is not None:
            raise refusal
        if last:
            raise StagingError(f"could not claim slot {params['slot']}: it kept changing")
        raise _Retry()

    def _claim_auto(self, cur: Any, params: dict[str, Any]) -> ClaimResult:
        # A task that already holds a slot gets that slot back, renewed: auto is idempotent.
        cur.execute(
            compose(
                "UPDATE {slots} SET ttl_seconds = %(ttl)s,"
                " expires_at = now() + make_interval(secs => %(ttl)s),"
                " note = coalesce(%(note)s, note)"
                " WHERE task = %(task)s AND status = 'claimed' RETURNING {cols}"
            ),
            params,
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
                params,
            )
        except psycopg2.errors.UniqueViolation:
            raise _Retry() from None  # the same task won elsewhere a moment ago: renew it
        row = cur.fetchone()
        if row is None:
            cur.execute(compose("SELECT count(*) AS n FROM {slots} WHERE role = 'qa'"))
            raise no_free_qa_slot(cur.fetchone()["n"])
        return ClaimResult(slot_state(row), False)

    def _held_by_task(self, cur: Any, task: str) -> SlotState | None:
        cur.execute(
            compose("SELECT {cols} FROM {slots} WHERE task = %s AND status = 'claimed'"), (task,)
        )
        row = cur.fetchone()
        return slot_state(row) if row else None

    def release(
        self,
        slot_id: int,
        by: str,
        *,
        task: str | None = None,
        force: bool = False,
        expired_only: bool = False,
        action: str = "release",
        reason: str | None = None,
        expect_commit: str | None = None,
    ) -> ReleaseResult:
        task = parse_task(task) if task else None
        params = {
            "slot": slot_id,
            "by": by,
            "task": task,
            "force": force,
            "expired_only": expired_only,
            "commit": parse_commit(expect_commit) if expect_commit else None,
        }
        with self._transaction(actor=by, action=action, detail=reason or "") as cur:
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
                params,
            )
            row = cur.fetchone()
            if row is not None:
                return ReleaseResult(
                    SlotState.from_dict(row["before"]), SlotState.from_dict(row["after"])
                )
            state = self._get(cur, slot_id)
        if not state.claimed:
            return ReleaseResult(state, state)  # already free: nothing to do
        # The database refused. It judged the expiry by its own clock, so `expired=False`:
        # when expired_only refused, the claim was not expired (unless a check before that one
        # names another reason); a claim that changed since the UPDATE is not ours to release.
        raise release_refusal(
            state,
            by,
            task=task,
            force=force,
            expired_only=expired_only,
            expect_commit=params["commit"],
            expired=False,
        ) or release_not_allowed(state)

    def record_deploy(
        self,
        slot_id: int,
        branch: str,
        commit: str,
        by: str,
        task: str | None = None,
        serving: bool = False,
    ) -> SlotState:
        task = parse_task(task) if task else None
        branch, commit = parse_branch(branch), parse_commit(commit)
        params = {
            "slot": slot_id,
            "branch": branch,
            "commit": commit,
            "task": task,
            "serving": serving,
        }
        detail = f"{branch}@{commit[:12]}" + (" (serving, claim untouched)" if serving else "")
        with self._transaction(actor=by, action="deploy", detail=detail) as cur:
            cur.execute(
                compose(
                    "UPDATE {slots} SET branch = %(branch)s, commit = %(commit)s,"
                    " deployed_at = CASE WHEN %(serving)s AND status = 'claimed'"
                    "   THEN deployed_at ELSE now() END,"
                    " expires_at = CASE WHEN %(serving)s THEN expires_at"
                    "   ELSE now() + make_interval(secs => ttl_seconds) END"
                    " WHERE slot_id = %(slot)s AND (%(serving)s OR (status = 'claimed'"
                    " AND (%(task)s::text IS NULL OR task = %(task)s))) RETURNING {cols}"
                ),
                params,
            )
            row = cur.fetchone()
            if row is not None:
                return slot_state(row)
            state = self._get(cur, slot_id)
        if not state.claimed:
            raise Conflict(
                f"slot {slot_id} ({state.identifier}) is free: claim it before recording a deploy"
            )
        raise Conflict(f"slot {slot_id} ({state.identifier}) is held by {state.holder_text()}")

    def record_failed_deploy(
        self, slot_id: int, branch: str, commit: str, by: str, step: str, serving: str
    ) -> None:
        with self._transaction() as cur:
            self._get(cur, slot_id)  # an unknown slot is BadInput, as everywhere
            insert_failed_deploy(cur, self.via, slot_id, branch, commit, by, step, serving)


class _Retry(Exception):
    """The transaction saw a concurrent change; run it again from the start."""
