"""A failed deploy in marts.staging_slot_events: inserted straight into the history, since
the slot's row does not change (nothing new was deployed), so its trigger writes no event."""

from __future__ import annotations

from typing import Any

from staging_ops.claims.model import (
    DEPLOY_FAILED,
    failed_deploy_detail,
    parse_branch,
    parse_commit,
    parse_text,
)
from staging_ops.registry.schema import compose


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
