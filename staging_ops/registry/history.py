"""marts.staging_slot_events, the append-only history: read newest first, and a failed deploy
inserted straight into it (the slot's row does not change, since nothing new was deployed, so
its trigger writes no event). Every other event is the trigger's, written with the change."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from psycopg2 import sql

from staging_ops.registry.schema import EVENT_COLUMNS, EVENTS, compose
from staging_ops.slots.model import (
    DEPLOY_FAILED,
    SlotEvent,
    failed_deploy_detail,
    parse_branch,
    parse_commit,
    parse_text,
)


def select_history(cur: Any, slot_id: int | None, limit: int) -> list[SlotEvent]:
    """The newest `limit` events, of one slot or of all."""
    cur.execute(
        sql.SQL(
            "SELECT {cols} FROM {events} WHERE %(slot)s::integer IS NULL "
            "OR slot_id = %(slot)s ORDER BY id DESC LIMIT %(limit)s"
        ).format(cols=sql.SQL(", ").join(map(sql.Identifier, EVENT_COLUMNS)), events=EVENTS),
        {"slot": slot_id, "limit": limit},
    )
    return [SlotEvent(**{**row, "at": row["at"].astimezone(UTC)}) for row in cur.fetchall()]


def insert_failed_deploy(
    cur: Any, via: str, slot_id: int, branch: str, commit: str, by: str, step: str, serving: str
) -> None:
    """One "deploy failed" event on `cur` (the caller's transaction); values checked as a
    deploy's are (BadInput)."""
    detail = failed_deploy_detail(
        parse_branch(branch),
        parse_commit(commit) if commit else "",
        parse_text(step, "step") or "deploy",
        parse_text(serving, "serving") or "",
    )
    cur.execute(
        compose(
            "INSERT INTO {events} (slot_id, action, actor, via, detail)"
            " VALUES (%(slot)s, %(action)s, %(by)s, %(via)s, %(detail)s)"
        ),
        {
            "slot": slot_id,
            "action": DEPLOY_FAILED,
            "by": parse_text(by, "by") or "?",
            "via": via,
            "detail": detail,
        },
    )
