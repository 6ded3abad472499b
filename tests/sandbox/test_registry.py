"""The PostgreSQL registry itself: migrations, the rules the database enforces on its own, the
append-only history, and failures that must read as one clean line.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest

from staging_ops.errors import BadInput, Conflict, StagingError
from staging_ops.inventory import Inventory, load_inventory
from staging_ops.registry.dsn import connect_kwargs, describe_dsn, redact
from staging_ops.registry.migrations import load_migrations
from staging_ops.registry.migrator import migrate, migrate_report
from staging_ops.registry.postgres import PostgresRegistry
from tests.conftest import execute

WEEK = timedelta(days=7)


@pytest.fixture
def inventory(test_inventory_path: Path) -> Inventory:
    return load_inventory(test_inventory_path)


@pytest.fixture
def migrated(registry_dsn: str, inventory: Inventory) -> str:
    migrate(registry_dsn, inventory)
    return registry_dsn


@pytest.fixture
def registry(migrated: str) -> Iterator[PostgresRegistry]:
    reg = PostgresRegistry(migrated)
    yield reg
    reg.close()


# ---- migrations ---------------------------------------------------------------------------


def test_migrate_is_idempotent_and_counts_changes(registry_dsn: str, inventory: Inventory) -> None:
    first = migrate_report(registry_dsn, inventory)
    assert first.applied == [
        "0001_staging_slots",
        "0002_slots_changed_notify",
        "0003_webhook_deliveries",
        "0004_integration_outbox",
        "0005_deploy_requests",
    ]
    assert first.slots_added == list(range(1, 11)) and first.changes == 15
    assert migrate(registry_dsn, inventory) == 0
    rows = execute(
        registry_dsn,
        "SELECT slot_id, identifier, role, status FROM marts.staging_slots ORDER BY slot_id",
    )
    assert rows[0] == (1, "staging-1", "qa", "free") and rows[9] == (
        10,
        "staging-10",
        "staging",
        "free",
    )
    assert execute(
        registry_dsn, "SELECT version, name FROM marts.staging_registry_migrations ORDER BY 1"
    ) == [
        (1, "staging_slots"),
        (2, "slots_changed_notify"),
        (3, "webhook_deliveries"),
        (4, "integration_outbox"),
        (5, "deploy_requests"),
    ]


def test_a_registry_at_version_1_is_upgraded_to_the_notify_trigger(
    registry_dsn: str, inventory: Inventory
) -> None:
    """A droplet's registry made by the first release gets migration 0002 alone, rows kept."""
    migrate(registry_dsn, inventory)
    execute(registry_dsn, "UPDATE marts.staging_slots SET branch = 'kept' WHERE slot_id = 3")
    execute(
        registry_dsn,
        "DROP TRIGGER staging_slots_notify ON marts.staging_slots;"
        " DROP FUNCTION marts.staging_slots_notify();"
        " DELETE FROM marts.staging_registry_migrations WHERE version = 2",
    )
    report = migrate_report(registry_dsn, inventory)
    assert (report.applied, report.slots_added) == (["0002_slots_changed_notify"], [])
    assert execute(registry_dsn, "SELECT branch FROM marts.staging_slots WHERE slot_id = 3") == [
        ("kept",)
    ]
    assert execute(
        registry_dsn,
        "SELECT tgname FROM pg_trigger WHERE tgname = 'staging_slots_notify'",
    ) == [("staging_slots_notify",)]


def test_migrate_updates_changed_slots_and_keeps_claims(
    migrated: str, inventory: Inventory, registry: PostgresRegistry
) -> None:
    registry.claim(3, "JA-3", "alice", WEEK)
    moved = dataclasses.replace(inventory.slots[3], subdomain="qa-3.example.net")
    changed = dataclasses.replace(inventory, slots={**inventory.slots, 3: moved})
    report = migrate_report(migrated, changed)
    assert (report.applied, report.slots_added, report.slots_updated) == ([], [], [3])
    state = registry.get(3)
    assert state.subdomain == "qa-3.example.net" and state.task == "JA-3"


def test_concurrent_migrators_apply_once(registry_dsn: str, inventory: Inventory) -> None:
    results: list[int | Exception] = []

    def run() -> None:
        try:
            results.append(migrate(registry_dsn, inventory))
        except Exception as exc:  # collected, asserted below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results, key=str) == [0, 0, 0, 0, 0, len(load_migrations()) + 10]
    assert execute(registry_dsn, "SELECT count(*) FROM marts.staging_slot_events")[0][0] == 10


def test_a_changed_migration_is_refused(migrated: str, inventory: Inventory) -> None:
    execute(migrated, "UPDATE marts.staging_registry_migrations SET checksum = 'x'")
    with pytest.raises(StagingError, match="changed after it was applied"):
        migrate(migrated, inventory)


def test_a_newer_schema_is_refused(migrated: str, inventory: Inventory) -> None:
    execute(
        migrated,
        "INSERT INTO marts.staging_registry_migrations (version, name, checksum) "
        "VALUES (999, 'future', 'x')",
    )
    with pytest.raises(StagingError, match="newer than this staging-ops"):
        migrate(migrated, inventory)


def test_unmigrated_registry_says_what_to_run(registry_dsn: str) -> None:
    reg = PostgresRegistry(registry_dsn)
    try:
        with pytest.raises(StagingError, match=r"invoke registry\.migrate"):
            reg.status()
    finally:
        reg.close()


# ---- rules in the database, whoever writes ------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        # claimed without task/owner
        "UPDATE marts.staging_slots SET status = 'claimed' WHERE slot_id = 1",
        # free but with a holder
        "UPDATE marts.staging_slots SET task = 'JA-1', owner = 'a' WHERE slot_id = 1",
        # a task key that is not a Linear key
        "UPDATE marts.staging_slots SET status = 'claimed', task = 'ja-1', owner = 'a', "
        "claimed_at = now(), expires_at = now(), ttl_seconds = 1 WHERE slot_id = 1",
        # an unknown status
        "UPDATE marts.staging_slots SET status = 'reserved' WHERE slot_id = 1",
    ],
)
def test_check_constraints_hold_for_hand_made_edits(migrated: str, statement: str) -> None:
    with pytest.raises(psycopg2.errors.CheckViolation):
        execute(migrated, statement)


def test_one_claimed_slot_per_task_is_a_unique_index(migrated: str) -> None:
    claim = (
        "UPDATE marts.staging_slots SET status = 'claimed', task = 'JA-1', owner = 'a', "
        "claimed_at = now(), expires_at = now(), ttl_seconds = 60 WHERE slot_id = %s"
    )
    execute(migrated, claim, (1,))
    with pytest.raises(psycopg2.errors.UniqueViolation):
        execute(migrated, claim, (2,))


def test_history_is_append_only_and_records_hand_made_edits(migrated: str) -> None:
    execute(migrated, "UPDATE marts.staging_slots SET branch = 'hotfix' WHERE slot_id = 2")
    last = execute(
        migrated,
        "SELECT action, actor, via, before->>'branch', after->>'branch' "
        "FROM marts.staging_slot_events ORDER BY id DESC LIMIT 1",
    )
    assert last == [("update", "postgres", "sql", None, "hotfix")]
    for statement in (
        "UPDATE marts.staging_slot_events SET actor = 'x'",
        "DELETE FROM marts.staging_slot_events",
        "TRUNCATE marts.staging_slot_events",
    ):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="append-only"):
            execute(migrated, statement)


def test_a_no_op_update_records_nothing(migrated: str) -> None:
    before = execute(migrated, "SELECT count(*) FROM marts.staging_slot_events")
    execute(migrated, "UPDATE marts.staging_slots SET status = status")
    assert execute(migrated, "SELECT count(*) FROM marts.staging_slot_events") == before


# ---- one statement decides ------------------------------------------------------------------


def test_release_judges_the_row_as_it_is_when_it_gets_the_lock(
    migrated: str, registry: PostgresRegistry
) -> None:
    """alice's release waits behind a session that hands her slot to bob: it must then see
    bob's claim and refuse, not release it because it was alice's when she asked."""
    registry.claim(5, "JA-1", "alice", WEEK)
    other = psycopg2.connect(migrated)
    cur = other.cursor()
    cur.execute("SELECT 1 FROM marts.staging_slots WHERE slot_id = 5 FOR UPDATE")
    cur.execute("UPDATE marts.staging_slots SET task = 'JA-2', owner = 'bob' WHERE slot_id = 5")
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(_try_release(registry)))
    worker.start()
    worker.join(0.5)
    assert worker.is_alive()  # blocked on bob's row lock
    other.commit()
    other.close()
    worker.join(10)
    assert isinstance(outcome[0], Conflict) and "JA-2" in str(outcome[0])
    assert registry.get(5).task == "JA-2"


def _try_release(registry: PostgresRegistry) -> object:
    try:
        return registry.release(5, "alice")
    except Conflict as exc:
        return exc


# ---- connection failures, as one line without secrets ------------------------------------


def test_unreachable_names_host_and_port_without_password() -> None:
    with pytest.raises(StagingError) as caught:
        PostgresRegistry("postgresql://ops:s3cret@127.0.0.1:9/registry?connect_timeout=2")
    message = str(caught.value)
    assert "127.0.0.1:9/registry" in message and "s3cret" not in message
    assert "\n" not in message


def test_invalid_dsn_is_bad_input_without_echoing_it() -> None:
    with pytest.raises(BadInput) as caught:
        connect_kwargs("host=x password=s3cret port")
    assert "s3cret" not in str(caught.value)


def test_redact_and_describe() -> None:
    dsn = "postgresql://ops:pa%40ss@db.internal:6543/registry"
    assert describe_dsn(dsn) == "db.internal:6543/registry"
    assert describe_dsn("host=h dbname=d") == "h:5432/d"
    assert "pa%40ss" not in redact(f"could not use {dsn}", dsn)
    assert redact("password=hunter2 host=x", "host=x password=hunter2") == "password=*** host=x"


def test_dry_run_reports_and_changes_nothing(registry_dsn: str, inventory: Inventory) -> None:
    assert migrate_report(registry_dsn, inventory, dry_run=True).changes == 15
    assert execute(registry_dsn, "SELECT to_regclass('marts.staging_slots')") == [(None,)]
    assert migrate(registry_dsn, inventory) == 15
    assert migrate_report(registry_dsn, inventory, dry_run=True).changes == 0
