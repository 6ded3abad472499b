"""marts.staging_deploy_requests: the queue of server-side deploys and rollbacks.

Every change that decides (queue, take, give up a dead worker's request) runs in one short
transaction under one advisory lock, so two workers never decide on the same picture; the
decisions themselves are slots/deploy_requests.py's (pure). The partial unique index on
running requests is the database's own backstop: two running requests for one slot cannot
be committed. A worker's heartbeat and its end are conditional on the request still being
its own (`worker` and `state`), so a worker whose lease expired and whose request another
worker took can no longer write to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg2 import sql

from staging_ops.errors import BadInput
from staging_ops.jsondoc import JSONObject
from staging_ops.registry.pool import Connections
from staging_ops.slots.deploy_requests import (
    FAILED,
    LEASE,
    MAX_ATTEMPTS,
    OPEN,
    QUEUED,
    RUNNING,
    SUPERSEDED,
    DeployRequest,
    Progress,
    plan_claim,
    superseded,
)

REQUESTS = sql.Identifier("marts", "staging_deploy_requests")
SETTINGS = sql.Identifier("marts", "staging_claim_settings")
COLUMNS = [f.name for f in fields(DeployRequest)]
# pg_advisory_xact_lock key of the queue's decisions ("STGDEPLQ" in ASCII).
QUEUE_LOCK = 0x5354_4744_4550_4C51
JSON_COLUMNS = ("steps", "lines", "result")


@dataclass(frozen=True)
class NewRequest:
    """A deploy or rollback to queue; its values already checked by the caller."""

    slot_id: int
    kind: str
    requested_by: str
    via: str
    branch: str | None = None
    commit: str | None = None
    target: str | None = None
    task: str | None = None
    settle: timedelta = timedelta(0)  # wait this long for a newer request to supersede it


def _q(template: str) -> sql.Composed:
    cols = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    return sql.SQL(template).format(requests=REQUESTS, settings=SETTINGS, cols=cols)


def _request(row: dict[str, Any]) -> DeployRequest:
    values = {c: row[c] for c in COLUMNS}
    for key, value in values.items():
        if isinstance(value, datetime):
            values[key] = value.astimezone(UTC)
    values["steps"] = values["steps"] or []
    values["lines"] = values["lines"] or []
    return DeployRequest(**values)


class DeployQueue:
    """The queue on the registry database at `dsn`."""

    def __init__(self, dsn: str, max_connections: int = 2) -> None:
        self._db = Connections(dsn, max_connections=max_connections)

    def close(self) -> None:
        self._db.close()

    def enqueue(self, new: NewRequest) -> DeployRequest:
        """Queue `new`; the queued requests of its slot it supersedes say so."""
        with self._db.transaction("queue") as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (QUEUE_LOCK,))
            cur.execute(
                _q(
                    "INSERT INTO {requests} (slot_id, kind, branch, commit, target, task,"
                    " requested_by, via, not_before) VALUES (%(slot_id)s, %(kind)s, %(branch)s,"
                    " %(commit)s, %(target)s, %(task)s, %(requested_by)s, %(via)s,"
                    " clock_timestamp() + %(settle)s) RETURNING {cols}"
                ),
                new.__dict__,
            )
            created = _request(cur.fetchone())
            cur.execute(
                _q("SELECT {cols} FROM {requests} WHERE slot_id = %s AND state = %s"),
                (new.slot_id, QUEUED),
            )
            _supersede(cur, superseded([_request(r) for r in cur.fetchall()]))
            return created

    def claim(
        self, worker: str, *, lease: timedelta = LEASE, max_attempts: int = MAX_ATTEMPTS
    ) -> DeployRequest | None:
        """The request `worker` is to run now (running, leased to it), or None. Requests of
        workers gone silent are taken back or failed first (plan_claim)."""
        with self._db.transaction("queue") as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (QUEUE_LOCK,))
            cur.execute("SELECT clock_timestamp() AS now")
            now = cur.fetchone()["now"]
            cur.execute(
                _q("SELECT {cols} FROM {requests} WHERE state = ANY(%s) ORDER BY id FOR UPDATE"),
                (list(OPEN),),
            )
            plan = plan_claim([_request(r) for r in cur.fetchall()], now, max_attempts)
            if plan.requeue:
                cur.execute(
                    _q("UPDATE {requests} SET state = %s, worker = NULL WHERE id = ANY(%s)"),
                    (QUEUED, list(plan.requeue)),
                )
            if plan.fail:
                cur.execute(
                    _q(
                        "UPDATE {requests} SET state = %s, finished_at = clock_timestamp(),"
                        " error = %s WHERE id = ANY(%s)"
                    ),
                    (
                        FAILED,
                        f"its worker stopped answering {max_attempts} times (killed or cut"
                        " off): given up",
                        list(plan.fail),
                    ),
                )
            _supersede(cur, list(plan.supersede))
            if plan.take is None:
                return None
            cur.execute(
                _q(
                    "UPDATE {requests} SET state = %s, worker = %s, attempts = attempts + 1,"
                    " lease_until = clock_timestamp() + %s, heartbeat_at = clock_timestamp(),"
                    " started_at = coalesce(started_at, clock_timestamp()),"
                    " step = 'starting' WHERE id = %s RETURNING {cols}"
                ),
                (RUNNING, worker, lease, plan.take),
            )
            return _request(cur.fetchone())

    def heartbeat(
        self, request_id: int, worker: str, progress: Progress, lease: timedelta = LEASE
    ) -> bool:
        """Renew `worker`'s lease and write its progress (step, steps, lines); False when the
        request is no longer its own (its lease expired and another worker took it)."""
        with self._db.transaction("queue") as cur:
            cur.execute(
                _q(
                    "UPDATE {requests} SET lease_until = clock_timestamp() + %s,"
                    " heartbeat_at = clock_timestamp(), step = %s, steps = %s, lines = %s"
                    " WHERE id = %s AND worker = %s AND state = %s RETURNING id"
                ),
                (lease, *_progress(progress), request_id, worker, RUNNING),
            )
            return cur.fetchone() is not None

    def finish(
        self,
        request_id: int,
        worker: str,
        state: str,
        progress: Progress,
        *,
        result: JSONObject | None = None,
        error: str | None = None,
    ) -> bool:
        """The request ends `state` (done or failed), if it is still `worker`'s."""
        with self._db.transaction("queue") as cur:
            cur.execute(
                _q(
                    "UPDATE {requests} SET state = %s, finished_at = clock_timestamp(),"
                    " lease_until = NULL, step = %s, steps = %s, lines = %s, result = %s,"
                    " error = %s WHERE id = %s AND worker = %s AND state = %s RETURNING id"
                ),
                (
                    state,
                    *_progress(progress),
                    json.dumps(result, default=str) if result is not None else None,
                    error,
                    request_id,
                    worker,
                    RUNNING,
                ),
            )
            return cur.fetchone() is not None

    def get(self, request_id: int) -> DeployRequest | None:
        with self._db.read() as cur:
            cur.execute(_q("SELECT {cols} FROM {requests} WHERE id = %s"), (request_id,))
            row = cur.fetchone()
        return _request(row) if row else None

    def recent(self, slot_id: int | None = None, limit: int = 10) -> list[DeployRequest]:
        """The newest requests, of one slot or of all."""
        if not 1 <= limit <= 1000:
            raise BadInput("limit must be between 1 and 1000")
        with self._db.read() as cur:
            cur.execute(
                _q(
                    "SELECT {cols} FROM {requests} WHERE %(slot)s::integer IS NULL"
                    " OR slot_id = %(slot)s ORDER BY id DESC LIMIT %(limit)s"
                ),
                {"slot": slot_id, "limit": limit},
            )
            return [_request(r) for r in cur.fetchall()]

    # -- a claim's auto_deploy (default on; a new claim starts afresh)

    def auto_deploy(self, slot_id: int, claimed_at: datetime) -> bool:
        with self._db.read() as cur:
            cur.execute(
                _q("SELECT auto_deploy FROM {settings} WHERE slot_id = %s AND claimed_at = %s"),
                (slot_id, claimed_at),
            )
            row = cur.fetchone()
        return True if row is None else bool(row["auto_deploy"])

    def set_auto_deploy(self, slot_id: int, claimed_at: datetime, value: bool) -> None:
        with self._db.transaction("queue") as cur:
            cur.execute(
                _q(
                    "INSERT INTO {settings} (slot_id, claimed_at, auto_deploy)"
                    " VALUES (%s, %s, %s) ON CONFLICT (slot_id) DO UPDATE"
                    " SET claimed_at = EXCLUDED.claimed_at, auto_deploy = EXCLUDED.auto_deploy"
                ),
                (slot_id, claimed_at, value),
            )


def _progress(progress: Progress) -> tuple[str | None, str, str]:
    return (
        progress.step,
        json.dumps(progress.steps, default=str),
        json.dumps(progress.lines, default=str),
    )


def _supersede(cur: Any, pairs: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> None:
    for old, newer in pairs:
        cur.execute(
            _q(
                "UPDATE {requests} SET state = %s, superseded_by = %s,"
                " finished_at = clock_timestamp(), lease_until = NULL WHERE id = %s"
            ),
            (SUPERSEDED, newer, old),
        )
