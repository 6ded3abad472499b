"""The registry's tables as SQL identifiers, the one way queries name them, and rows back as
SlotStates.

Values always travel as query parameters; the only composed SQL is identifiers (table and
column names from these constants), via psycopg2.sql.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC
from typing import Any

import psycopg2.extensions
from psycopg2 import sql

from staging_ops.slots.model import SlotEvent, SlotState

SCHEMA = "marts"
SLOTS = sql.Identifier(SCHEMA, "staging_slots")
EVENTS = sql.Identifier(SCHEMA, "staging_slot_events")
MIGRATIONS = sql.Identifier(SCHEMA, "staging_registry_migrations")
SLOT_COLUMNS = [f.name for f in fields(SlotState)]
EVENT_COLUMNS = [f.name for f in fields(SlotEvent)]


def slot_columns(prefix: str | None = None) -> sql.Composable:
    """Every column of marts.staging_slots, in SlotState's order (qualified by `prefix`)."""
    if prefix:
        return sql.SQL(", ").join(sql.Identifier(prefix, c) for c in SLOT_COLUMNS)
    return sql.SQL(", ").join(map(sql.Identifier, SLOT_COLUMNS))


def compose(template: str, **extra: sql.Composable) -> sql.Composed:
    """`template` with {slots}, {events} and {cols} (every slot column) filled in."""
    return sql.SQL(template).format(slots=SLOTS, events=EVENTS, cols=slot_columns(), **extra)


class DictRowCursor(psycopg2.extensions.cursor):
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


def slot_state(row: dict[str, Any]) -> SlotState:
    """A marts.staging_slots row (a dict) as a SlotState, its times in UTC."""
    values = {c: row[c] for c in SLOT_COLUMNS}
    for key in ("claimed_at", "expires_at", "deployed_at", "updated_at"):
        if values[key] is not None:
            values[key] = values[key].astimezone(UTC)
    return SlotState(**values)


def set_context(cur: Any, *, actor: str, via: str, action: str, detail: str) -> None:
    """Tell the event trigger who acts, how and why, for this transaction only."""
    cur.execute(
        "SELECT set_config('staging_ops.actor', %s, true), set_config('staging_ops.via', %s, true),"
        " set_config('staging_ops.action', %s, true), set_config('staging_ops.detail', %s, true)",
        (actor, via, action, detail),
    )
