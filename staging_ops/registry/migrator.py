"""`registry.migrate`: apply the schema migrations (migrations/) and register the inventory's
slots, in one transaction under an advisory lock, so concurrent and repeated runs are safe.

(Named migrator, not migrate, so that `staging_ops.registry.migrate` is only ever the function.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg2
from psycopg2 import sql

from staging_ops.errors import StagingError
from staging_ops.inventory import Inventory
from staging_ops.registry.dsn import connect, database_failure
from staging_ops.registry.migrations import load_migrations
from staging_ops.registry.schema import MIGRATIONS, SCHEMA, compose, set_context

# pg_advisory_xact_lock key shared by every migrator ("STGSLOTS" in ASCII).
MIGRATE_LOCK = 0x5354_4753_4C4F_5453


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
            set_context(cur, actor=actor, via="migrate", action="", detail="")
            _register_slots(cur, inventory, report)
        if dry_run:
            conn.rollback()
        else:
            conn.commit()
    except psycopg2.Error as exc:
        raise database_failure(dsn, exc) from None
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
    cur.execute(compose("SELECT slot_id, identifier, subdomain, role FROM {slots}"))
    existing = {row[0]: tuple(row[1:]) for row in cur.fetchall()}
    for slot in inventory.slots.values():
        wanted = (slot.identifier, slot.subdomain, slot.role)
        if slot.id not in existing:
            cur.execute(
                compose(
                    "INSERT INTO {slots} (slot_id, identifier, subdomain, role) "
                    "VALUES (%s, %s, %s, %s)"
                ),
                (slot.id, *wanted),
            )
            report.slots_added.append(slot.id)
        elif existing[slot.id] != wanted:
            cur.execute(
                compose(
                    "UPDATE {slots} SET identifier = %s, subdomain = %s, role = %s "
                    "WHERE slot_id = %s"
                ),
                (*wanted, slot.id),
            )
            report.slots_updated.append(slot.id)
