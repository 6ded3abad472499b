"""The integration outbox's rows (migration 0004): written with an event, leased by a
deliverer, then delivered, retried later, or given up; and the GitHub Deployment kept per
slot and commit so that an event delivered twice never makes a second one.

Storage only: what an event means and when to retry is staging_ops.integrations'. Each call
is one short transaction on its own connection (a deliverer runs beside the registry's pool,
in a thread or in the API server's loop).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2
from psycopg2 import sql

from staging_ops.jsondoc import JSONObject
from staging_ops.registry.dsn import connect, database_failure

OUTBOX = sql.Identifier("marts", "staging_outbox")
DEPLOYMENTS = sql.Identifier("marts", "staging_github_deployments")
KEEP_DAYS = 30


@dataclass(frozen=True)
class OutboxRow:
    """One leased row: `event` as it was written, `attempts` before this one."""

    id: int
    target: str
    slot_id: int
    kind: str
    event: JSONObject
    attempts: int


@dataclass(frozen=True)
class OutboxCounts:
    """Per target: rows not delivered yet (due or waiting to retry) and rows given up."""

    pending: int = 0
    failed: int = 0


@contextmanager
def _cursor(dsn: str) -> Iterator[Any]:
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            yield cur
        conn.commit()
    except psycopg2.Error as exc:
        raise database_failure(dsn, exc) from None
    finally:
        conn.close()


def _q(template: str) -> sql.Composed:
    return sql.SQL(template).format(outbox=OUTBOX, deployments=DEPLOYMENTS)


def add(dsn: str, rows: list[tuple[str, int, str, JSONObject]]) -> list[int]:
    """Insert (target, slot_id, kind, event) rows in one transaction; their ids."""
    ids = []
    with _cursor(dsn) as cur:
        for target, slot_id, kind, event in rows:
            cur.execute(
                _q(
                    "INSERT INTO {outbox} (target, slot_id, kind, event)"
                    " VALUES (%s, %s, %s, %s) RETURNING id"
                ),
                (target, slot_id, kind, json.dumps(event)),
            )
            ids.append(cur.fetchone()[0])
    return ids


def lease_due(dsn: str, targets: list[str], lease_seconds: float, limit: int) -> list[OutboxRow]:
    """The due rows that are first in their slot's queue for their target (an earlier row
    still open holds the later ones back: statuses must arrive in order), leased for
    `lease_seconds` so no other deliverer takes them meanwhile."""
    with _cursor(dsn) as cur:
        cur.execute(
            _q(
                "WITH heads AS ("
                " SELECT DISTINCT ON (target, slot_id) id"
                " FROM {outbox} WHERE delivered_at IS NULL AND failed_at IS NULL"
                " AND target = ANY(%(targets)s) ORDER BY target, slot_id, id)"
                " SELECT o.id, o.target, o.slot_id, o.kind, o.event, o.attempts"
                " FROM {outbox} o JOIN heads h ON h.id = o.id"
                # On o, not on the CTE: a row another deliverer leased meanwhile is judged
                # again, as it is now, once its lock is free (READ COMMITTED's recheck).
                " WHERE o.delivered_at IS NULL AND o.failed_at IS NULL"
                " AND o.next_attempt_at <= now()"
                " AND (o.leased_until IS NULL OR o.leased_until < now())"
                " ORDER BY o.id LIMIT %(limit)s FOR UPDATE OF o SKIP LOCKED"
            ),
            {"targets": targets, "limit": limit},
        )
        rows = [OutboxRow(*row) for row in cur.fetchall()]
        if rows:
            cur.execute(
                _q(
                    "UPDATE {outbox} SET leased_until = now() + make_interval(secs => %s)"
                    " WHERE id = ANY(%s)"
                ),
                (lease_seconds, [row.id for row in rows]),
            )
    return rows


def delivered(dsn: str, row_id: int) -> None:
    with _cursor(dsn) as cur:
        cur.execute(
            _q(
                "UPDATE {outbox} SET delivered_at = now(), leased_until = NULL,"
                " attempts = attempts + 1, last_error = NULL WHERE id = %s"
            ),
            (row_id,),
        )


def retry_at(dsn: str, row_id: int, when: datetime | None, error: str) -> None:
    """A failed attempt: tried again at `when`, or given up (None)."""
    with _cursor(dsn) as cur:
        cur.execute(
            _q(
                "UPDATE {outbox} SET attempts = attempts + 1, leased_until = NULL,"
                " last_error = %(error)s,"
                " next_attempt_at = coalesce(%(when)s, next_attempt_at),"
                " failed_at = CASE WHEN %(when)s::timestamptz IS NULL THEN now() END"
                " WHERE id = %(id)s"
            ),
            {"id": row_id, "when": when, "error": error[:500]},
        )


def counts(dsn: str) -> dict[tuple[str, int], OutboxCounts]:
    """Open and given-up rows per target and slot (rows older than KEEP_DAYS are pruned
    first)."""
    with _cursor(dsn) as cur:
        cur.execute(
            _q(
                "DELETE FROM {outbox} WHERE created_at < now() - make_interval(days => %s)"
                " AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)"
            ),
            (KEEP_DAYS,),
        )
        cur.execute(
            _q(
                "SELECT target, slot_id,"
                " count(*) FILTER (WHERE delivered_at IS NULL AND failed_at IS NULL),"
                " count(*) FILTER (WHERE failed_at IS NOT NULL) FROM {outbox}"
                " GROUP BY target, slot_id"
            )
        )
        return {
            (target, slot): OutboxCounts(pending, failed) for target, slot, pending, failed in cur
        }


def open_ids(dsn: str, ids: list[int]) -> list[int]:
    """Which of `ids` are neither delivered nor given up."""
    if not ids:
        return []
    with _cursor(dsn) as cur:
        cur.execute(
            _q(
                "SELECT id FROM {outbox} WHERE id = ANY(%s)"
                " AND delivered_at IS NULL AND failed_at IS NULL"
            ),
            (ids,),
        )
        return [row[0] for row in cur.fetchall()]


def deployment_id(dsn: str, repository: str, slot_id: int, commit: str) -> int | None:
    with _cursor(dsn) as cur:
        cur.execute(
            _q(
                "SELECT deployment_id FROM {deployments}"
                " WHERE repository = %s AND slot_id = %s AND commit = %s"
            ),
            (repository, slot_id, commit),
        )
        row = cur.fetchone()
        return row[0] if row else None


def keep_deployment(dsn: str, repository: str, slot_id: int, commit: str, ident: int) -> None:
    with _cursor(dsn) as cur:
        cur.execute(
            _q(
                "INSERT INTO {deployments} (repository, slot_id, commit, deployment_id)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (repository, slot_id, commit)"
                " DO UPDATE SET deployment_id = EXCLUDED.deployment_id, state = 'in_progress'"
            ),
            (repository, slot_id, commit, ident),
        )


def set_deployment_state(dsn: str, repository: str, ident: int, state: str) -> None:
    with _cursor(dsn) as cur:
        cur.execute(
            _q("UPDATE {deployments} SET state = %s WHERE repository = %s AND deployment_id = %s"),
            (state, repository, ident),
        )


def active_deployments(dsn: str, repository: str, slot_id: int) -> list[int]:
    """The slot's Deployments not yet marked inactive, oldest first."""
    with _cursor(dsn) as cur:
        cur.execute(
            _q(
                "SELECT deployment_id FROM {deployments} WHERE repository = %s"
                " AND slot_id = %s AND state <> 'inactive' ORDER BY created_at"
            ),
            (repository, slot_id),
        )
        return [row[0] for row in cur.fetchall()]
