"""The slot registry in PostgreSQL: marts.staging_slots, its migrations, and every claim operation.

Each operation is one short transaction whose deciding statement is a single UPDATE: the
check (is the slot free? is this the holder?) sits in its WHERE clause, so no other session
can slip in between a check and a write. The database enforces the rules as well (CHECK
constraints, a partial unique index for "one slot per task"), and a trigger writes every
change to the append-only marts.staging_slot_events in the same transaction.

Values always travel as query parameters; the only composed SQL is identifiers (table and
column names from constants), via psycopg2.sql.
"""

from __future__ import annotations

import copy
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, timedelta
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.pool
from psycopg2 import sql

from staging_ops.claims.model import (
    ClaimResult,
    HoldsAnotherSlot,
    ReleaseResult,
    SlotEvent,
    SlotState,
    UnknownSlot,
    parse_branch,
    parse_commit,
    parse_task,
    utc_text,
)
from staging_ops.errors import BadInput, Conflict, StagingError
from staging_ops.inventory import Inventory
from staging_ops.registry.changes import MAX_AGE_SECONDS, ReadCache, SharedStamp
from staging_ops.registry.migrations import load_migrations

SCHEMA = "marts"
SLOTS = sql.Identifier(SCHEMA, "staging_slots")
EVENTS = sql.Identifier(SCHEMA, "staging_slot_events")
MIGRATIONS = sql.Identifier(SCHEMA, "staging_registry_migrations")
SLOT_COLUMNS = [f.name for f in fields(SlotState)]
EVENT_COLUMNS = [f.name for f in fields(SlotEvent)]
# pg_advisory_xact_lock key shared by every migrator ("STGSLOTS" in ASCII).
MIGRATE_LOCK = 0x5354_4753_4C4F_5453
CONNECT_TIMEOUT = 5
# How often a claim is retried when a concurrent session changed the picture between our
# UPDATE and our diagnosis (rare; each retry is a fresh transaction).
ATTEMPTS = 3


def _columns(prefix: str | None = None) -> sql.Composable:
    if prefix:
        return sql.SQL(", ").join(sql.Identifier(prefix, c) for c in SLOT_COLUMNS)
    return sql.SQL(", ").join(map(sql.Identifier, SLOT_COLUMNS))


def _q(template: str, **extra: sql.Composable) -> sql.Composed:
    return sql.SQL(template).format(slots=SLOTS, events=EVENTS, cols=_columns(), **extra)


# ---- connections -------------------------------------------------------------------------


def redact(text: str, dsn: str) -> str:
    """`text` with the DSN's password removed, wherever and however it appears."""
    password = _dsn_params(dsn).get("password") or os.environ.get("PGPASSWORD")
    if password:
        text = text.replace(password, "***")
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.IGNORECASE)


def _dsn_params(dsn: str) -> dict[str, str]:
    try:
        return psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.Error:
        return {}


def describe_dsn(dsn: str) -> str:
    """`host:port/dbname` of a DSN (libpq defaults and PG* variables applied), no secrets."""
    params = _dsn_params(dsn)
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or ""
    return f"{host}:{port}/{dbname}" if dbname else f"{host}:{port}"


def connect_kwargs(dsn: str) -> dict[str, Any]:
    """psycopg2.connect arguments: the DSN plus our defaults unless the DSN sets them."""
    try:
        params = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.Error:
        # The parser's message may quote the DSN, password included: never show it.
        raise BadInput("STAGING_REGISTRY_DSN is not a valid PostgreSQL DSN or URL") from None
    kwargs: dict[str, Any] = {"dsn": dsn}
    if "connect_timeout" not in params:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT
    if "application_name" not in params:
        kwargs["application_name"] = "staging-ops"
    return kwargs


def unreachable(dsn: str, exc: BaseException) -> StagingError:
    reason = redact((str(exc).strip().splitlines() or ["no answer"])[0], dsn)
    return StagingError(f"cannot reach registry database {describe_dsn(dsn)}: {reason}")


def connect(dsn: str) -> psycopg2.extensions.connection:
    """One connection, or StagingError naming host:port (never the password)."""
    try:
        return psycopg2.connect(**connect_kwargs(dsn))
    except psycopg2.OperationalError as exc:
        raise unreachable(dsn, exc) from None


def _failure(dsn: str, exc: psycopg2.Error) -> StagingError:
    """A database error as one operator line."""
    if isinstance(exc, psycopg2.errors.UndefinedTable | psycopg2.errors.InvalidSchemaName):
        return StagingError(
            f"registry schema missing in {describe_dsn(dsn)}: run `invoke registry.migrate`"
        )
    if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
        return unreachable(dsn, exc)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return StagingError(f"registry database {describe_dsn(dsn)}: {redact(first, dsn)}")


# ---- migrations --------------------------------------------------------------------------


@dataclass
class MigrationReport:
    """What `migrate` changed: migrations applied, slot rows added or updated."""

    applied: list[str] = field(default_factory=list)
    slots_added: list[int] = field(default_factory=list)
    slots_updated: list[int] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return len(self.applied) + len(self.slots_added) + len(self.slots_updated)


def migrate(dsn: str, inventory: Inventory) -> int:
    """Apply pending migrations and register the inventory's slots; returns the change count
    (0 when everything was already in place). Safe to run concurrently and repeatedly."""
    return migrate_report(dsn, inventory).changes


def migrate_report(
    dsn: str, inventory: Inventory, actor: str = "registry.migrate", *, dry_run: bool = False
) -> MigrationReport:
    """`migrate`, returning what changed. One transaction: all of it happens or none of it.
    With `dry_run` the transaction is rolled back: the report says what would change."""
    report = MigrationReport()
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            # Serialises concurrent migrators (two provision runs, say) for this transaction.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            _apply_migrations(cur, report)
            _set_context(cur, actor=actor, via="migrate", action="", detail="")
            _register_slots(cur, inventory, report)
        if dry_run:
            conn.rollback()
        else:
            conn.commit()
    except psycopg2.Error as exc:
        raise _failure(dsn, exc) from None
    finally:
        conn.close()  # without a commit, closing rolls back
    return report


def _apply_migrations(cur: Any, report: MigrationReport) -> None:
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
    cur.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, name text NOT NULL, "
            "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(MIGRATIONS)
    )
    cur.execute(sql.SQL("SELECT version, checksum FROM {}").format(MIGRATIONS))
    applied = dict(cur.fetchall())
    known = load_migrations()
    newest = max((m.version for m in known), default=0)
    if applied and max(applied) > newest:
        raise StagingError(
            f"registry schema is at version {max(applied)}, newer than this "
            f"staging-ops knows ({newest}): upgrade staging-ops"
        )
    for migration in known:
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise StagingError(
                    f"registry migration {migration.version} "
                    f"({migration.name}) changed after it was applied"
                )
            continue
        cur.execute(migration.sql)
        cur.execute(
            sql.SQL("INSERT INTO {} (version, name, checksum) VALUES (%s, %s, %s)").format(
                MIGRATIONS
            ),
            (migration.version, migration.name, migration.checksum),
        )
        report.applied.append(f"{migration.version:04d}_{migration.name}")


def _register_slots(cur: Any, inventory: Inventory, report: MigrationReport) -> None:
    """One row per inventory slot. Rows of slots no longer in the inventory are kept (they
    may still be claimed); their claims can be released as usual."""
    cur.execute(_q("SELECT slot_id, identifier, subdomain, role FROM {slots}"))
    existing = {row[0]: tuple(row[1:]) for row in cur.fetchall()}
    for slot in inventory.slots.values():
        wanted = (slot.identifier, slot.subdomain, slot.role)
        if slot.id not in existing:
            cur.execute(
                _q(
                    "INSERT INTO {slots} (slot_id, identifier, subdomain, role) "
                    "VALUES (%s, %s, %s, %s)"
                ),
                (slot.id, *wanted),
            )
            report.slots_added.append(slot.id)
        elif existing[slot.id] != wanted:
            cur.execute(
                _q(
                    "UPDATE {slots} SET identifier = %s, subdomain = %s, role = %s "
                    "WHERE slot_id = %s"
                ),
                (*wanted, slot.id),
            )
            report.slots_updated.append(slot.id)


def _set_context(cur: Any, *, actor: str, via: str, action: str, detail: str) -> None:
    """Tell the event trigger who acts, how and why, for this transaction only."""
    cur.execute(
        "SELECT set_config('staging_ops.actor', %s, true), set_config('staging_ops.via', %s, true),"
        " set_config('staging_ops.action', %s, true), set_config('staging_ops.detail', %s, true)",
        (actor, via, action, detail),
    )


# ---- the registry ------------------------------------------------------------------------


class _DictRowCursor(psycopg2.extensions.cursor):
    """Rows as plain dicts. (RealDictCursor builds them key by key in Python, which is the
    biggest cost of a GET /api/staging/slots.)"""

    def _names(self) -> list[str]:
        return [column.name for column in self.description or ()]

    def fetchone(self) -> dict[str, Any] | None:  # type: ignore[override]
        row = super().fetchone()
        return None if row is None else dict(zip(self._names(), row, strict=True))

    def fetchall(self) -> list[dict[str, Any]]:  # type: ignore[override]
        names = self._names()
        return [dict(zip(names, row, strict=True)) for row in super().fetchall()]


def _state(row: dict[str, Any]) -> SlotState:
    values = {c: row[c] for c in SLOT_COLUMNS}
    for key in ("claimed_at", "expires_at", "deployed_at", "updated_at"):
        if values[key] is not None:
            values[key] = values[key].astimezone(UTC)
    return SlotState(**values)


class PostgresRegistry:
    """SlotRegistry on a PostgreSQL database (a pool, so a web server's threads can share it).

    `via` names the channel recorded with each event ("cli", "api:<token subject>").
    With `cache_reads` (long-running servers), `status()` and `get()` answer from memory until
    the table changes: see registry_changes.py (`shared_stamp`: the file a server's processes
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
                raise _failure(self.dsn, exc) from None
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
                conn.cursor(cursor_factory=_DictRowCursor) as cur,
            ):
                if actor or action:
                    _set_context(cur, actor=actor, via=self.via, action=action, detail=detail)
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
            conn.cursor(cursor_factory=_DictRowCursor) as cur,
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
            cur.execute(_q("SELECT {cols} FROM {slots} ORDER BY slot_id"))
            return tuple(_state(row) for row in cur.fetchall())

    def get(self, slot_id: int) -> SlotState:
        if self._cache is not None:
            for state in self.status():
                if state.slot_id == slot_id:
                    return state
        with self._read() as cur:
            return self._get(cur, slot_id)

    def _get(self, cur: Any, slot_id: int) -> SlotState:
        cur.execute(_q("SELECT {cols} FROM {slots} WHERE slot_id = %s"), (slot_id,))
        row = cur.fetchone()
        if row is None:
            raise UnknownSlot(
                f"slot {slot_id} is not in the registry "
                "(is the inventory migrated? `invoke registry.migrate`)"
            )
        return _state(row)

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
                _q(
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
            return ClaimResult(_state(row), bool(row["renewed"]))
        held = self._held_by_task(cur, params["task"])
        if held is not None and held.slot_id != params["slot"]:
            raise HoldsAnotherSlot(
                f"task {params['task']} {HoldsAnotherSlot.MARK} {held.slot_id} "
                f"({held.identifier}); release it first: "
                f"invoke release --slot {held.slot_id}"
            )
        state = self._get(cur, params["slot"])
        if state.claimed and state.task != params["task"]:
            raise Conflict(
                f"slot {state.slot_id} ({state.identifier}) is held by {state.holder_text()}"
            )
        if last:
            raise StagingError(f"could not claim slot {params['slot']}: it kept changing")
        raise _Retry()

    def _claim_auto(self, cur: Any, params: dict[str, Any]) -> ClaimResult:
        # A task that already holds a slot gets that slot back, renewed: auto is idempotent.
        cur.execute(
            _q(
                "UPDATE {slots} SET ttl_seconds = %(ttl)s,"
                " expires_at = now() + make_interval(secs => %(ttl)s),"
                " note = coalesce(%(note)s, note)"
                " WHERE task = %(task)s AND status = 'claimed' RETURNING {cols}"
            ),
            params,
        )
        row = cur.fetchone()
        if row is not None:
            return ClaimResult(_state(row), True)
        # Lowest free QA slot; SKIP LOCKED lets concurrent pickers take different slots
        # instead of queueing on the same row. Slot 10 (role 'staging') is never picked.
        try:
            cur.execute(
                _q(
                    "UPDATE {slots} s SET status = 'claimed', task = %(task)s, owner = %(owner)s,"
                    " note = %(note)s, claimed_at = now(), ttl_seconds = %(ttl)s,"
                    " expires_at = now() + make_interval(secs => %(ttl)s)"
                    " FROM (SELECT slot_id FROM {slots} WHERE status = 'free' AND role = 'qa'"
                    "       ORDER BY slot_id LIMIT 1 FOR UPDATE SKIP LOCKED) pick"
                    " WHERE s.slot_id = pick.slot_id RETURNING {scols}",
                    scols=_columns("s"),
                ),
                params,
            )
        except psycopg2.errors.UniqueViolation:
            raise _Retry() from None  # the same task won elsewhere a moment ago: renew it
        row = cur.fetchone()
        if row is None:
            cur.execute(_q("SELECT count(*) AS n FROM {slots} WHERE role = 'qa'"))
            total = cur.fetchone()["n"]
            raise Conflict(
                f"no free QA slot: all {total} QA slots are claimed "
                "(`invoke status` shows by whom; `invoke reap` frees stale ones)"
            )
        return ClaimResult(_state(row), False)

    def _held_by_task(self, cur: Any, task: str) -> SlotState | None:
        cur.execute(
            _q("SELECT {cols} FROM {slots} WHERE task = %s AND status = 'claimed'"), (task,)
        )
        row = cur.fetchone()
        return _state(row) if row else None

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
                _q(
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
        if task and state.task != task:
            raise Conflict(
                f"slot {slot_id} ({state.identifier}) is now held by "
                f"{state.holder_text()}, not by {task}"
            )
        if params["commit"] and state.commit != params["commit"]:
            raise Conflict(
                f"slot {slot_id} ({state.identifier}) was deployed again "
                f"({state.branch or '?'} at {(state.commit or '?')[:12]}) since it was judged"
            )
        if expired_only:
            raise Conflict(
                f"the claim on slot {slot_id} ({state.identifier}) is not expired "
                f"(expires {utc_text(state.expires_at)})"
            )
        raise Conflict(
            f"slot {slot_id} ({state.identifier}) is held by {state.holder_text()}; "
            f"only its owner or task may release it (or use --force)"
        )

    def record_deploy(
        self, slot_id: int, branch: str, commit: str, by: str, task: str | None = None
    ) -> SlotState:
        task = parse_task(task) if task else None
        branch, commit = parse_branch(branch), parse_commit(commit)
        params = {"slot": slot_id, "branch": branch, "commit": commit, "task": task}
        with self._transaction(actor=by, action="deploy", detail=f"{branch}@{commit[:12]}") as cur:
            cur.execute(
                _q(
                    "UPDATE {slots} SET branch = %(branch)s, commit = %(commit)s,"
                    " deployed_at = now(), expires_at = now() + make_interval(secs => ttl_seconds)"
                    " WHERE slot_id = %(slot)s AND status = 'claimed'"
                    " AND (%(task)s::text IS NULL OR task = %(task)s) RETURNING {cols}"
                ),
                params,
            )
            row = cur.fetchone()
            if row is not None:
                return _state(row)
            state = self._get(cur, slot_id)
        if not state.claimed:
            raise Conflict(
                f"slot {slot_id} ({state.identifier}) is free: claim it before recording a deploy"
            )
        raise Conflict(f"slot {slot_id} ({state.identifier}) is held by {state.holder_text()}")


class _Retry(Exception):
    """The transaction saw a concurrent change; run it again from the start."""
