"""The registry's read cache (registry_changes.py) on a real PostgreSQL: answers from memory
while nothing changes, and never after a change, whoever made it.

The caches here keep values for an hour, so a fresh answer can only come from the change
notification (or from this process's own write), never from the value merely getting old.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from staging_ops.inventory import load_inventory
from staging_ops.registry import PostgresRegistry, migrate
from staging_ops.registry.changes import SharedStamp
from staging_ops.slots.model import SlotState
from tests.conftest import execute

HOUR = 3600.0
NOTIFY_WAIT = 2.0  # generous on a loaded CI machine; a notification normally takes < 1 ms


@pytest.fixture
def migrated(registry_dsn: str, test_inventory_path: Path) -> str:
    migrate(registry_dsn, load_inventory(test_inventory_path))
    return registry_dsn


@pytest.fixture
def make_registry(migrated: str) -> Iterator[Callable[..., PostgresRegistry]]:
    made: list[PostgresRegistry] = []

    def make(**kwargs: object) -> PostgresRegistry:
        registry = PostgresRegistry(migrated, **kwargs)  # type: ignore[arg-type]
        made.append(registry)
        return registry

    yield make
    for registry in made:
        registry.close()


def slot(registry: PostgresRegistry, slot_id: int) -> SlotState:
    return next(s for s in registry.status() if s.slot_id == slot_id)


def eventually(check: Callable[[], bool], timeout: float = NOTIFY_WAIT) -> float:
    """Seconds until `check()` held; fails the test after `timeout`."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, "the change was not seen in time"
        time.sleep(0.005)
    return time.monotonic() - began


def listener_pids(dsn: str) -> list[int]:
    return [
        row[0]
        for row in execute(
            dsn,
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query ILIKE 'LISTEN%%' AND pid <> pg_backend_pid()",
        )
    ]


def test_reads_are_answered_from_memory_while_nothing_changes(make_registry, migrated) -> None:
    cached = make_registry(cache_reads=True, cache_max_age=HOUR)
    first = cached.status()
    assert [s.slot_id for s in first] == list(range(1, 11))
    assert cached.status() is first  # the same object: no query was made
    assert cached.get(4) is first[3]
    assert len(listener_pids(migrated)) == 1
    plain = make_registry()
    assert plain.status() is not plain.status()  # the CLI's registry never caches


def test_own_write_is_seen_at_once(make_registry) -> None:
    cached = make_registry(cache_reads=True, cache_max_age=HOUR)
    assert not slot(cached, 4).claimed
    cached.claim(4, "JA-1", "alice", timedelta(days=1))
    assert slot(cached, 4).task == "JA-1"  # no waiting: the write itself drops the value
    cached.release(4, "alice", task="JA-1")
    assert not cached.get(4).claimed


def test_another_registrys_claim_is_seen_through_the_notification(make_registry) -> None:
    reader = make_registry(cache_reads=True, cache_max_age=HOUR)
    writer = make_registry()
    assert not slot(reader, 5).claimed
    writer.claim(5, "JA-2", "bob", timedelta(days=1))
    eventually(lambda: slot(reader, 5).task == "JA-2")
    writer.release(5, "bob", task="JA-2")
    eventually(lambda: not reader.get(5).claimed)


def test_a_write_in_plain_sql_is_seen_too(make_registry, migrated) -> None:
    """The trigger, not our code, sends the notification: psql or a migration count as well."""
    reader = make_registry(cache_reads=True, cache_max_age=HOUR)
    assert slot(reader, 6).branch is None
    execute(migrated, "UPDATE marts.staging_slots SET branch = 'by hand' WHERE slot_id = 6")
    eventually(lambda: slot(reader, 6).branch == "by hand")


def test_a_change_that_fires_no_notification_is_never_served_stale(make_registry, migrated) -> None:
    """Without the trigger the cache would be wrong for an hour; with max_age it is not."""
    reader = make_registry(cache_reads=True, cache_max_age=0.2)
    assert slot(reader, 7).branch is None
    execute(migrated, "ALTER TABLE marts.staging_slots DISABLE TRIGGER staging_slots_notify")
    execute(migrated, "UPDATE marts.staging_slots SET branch = 'silent' WHERE slot_id = 7")
    assert slot(reader, 7).branch is None  # no notification: still the kept value, for now
    time.sleep(0.25)
    assert slot(reader, 7).branch == "silent"


def test_a_lost_listener_means_fresh_reads_and_a_new_listener(make_registry, migrated) -> None:
    reader = make_registry(cache_reads=True, cache_max_age=HOUR)
    reader.status()
    (pid,) = listener_pids(migrated)
    # The listener is killed, and the change it would have heard is made while it is gone.
    execute(migrated, "SELECT pg_terminate_backend(%s)", (pid,))
    eventually(lambda: listener_pids(migrated) == [])
    execute(migrated, "UPDATE marts.staging_slots SET branch = 'while deaf' WHERE slot_id = 8")
    assert slot(reader, 8).branch == "while deaf"
    (new_pid,) = listener_pids(migrated)
    assert new_pid != pid
    kept = reader.status()
    assert reader.status() is kept  # caching again
    execute(migrated, "UPDATE marts.staging_slots SET branch = 'heard' WHERE slot_id = 8")
    eventually(lambda: slot(reader, 8).branch == "heard")


def test_a_value_loaded_while_a_change_arrives_is_not_kept(make_registry, migrated) -> None:
    """A change committed after the read's snapshot must not be hidden by that read."""
    reader = make_registry(cache_reads=True, cache_max_age=HOUR)
    reader.status()  # listening
    reader._cache.invalidate()  # type: ignore[union-attr]
    original = reader._load_status

    def load_then_change() -> tuple[SlotState, ...]:
        states = original()
        execute(migrated, "UPDATE marts.staging_slots SET branch = 'raced' WHERE slot_id = 9")
        time.sleep(0.05)  # the notification reaches the listener before the value is stored
        return states

    reader._load_status = load_then_change  # type: ignore[method-assign]
    assert slot(reader, 9).branch is None  # this caller gets what it read...
    reader._load_status = original  # type: ignore[method-assign]
    assert slot(reader, 9).branch == "raced"  # ...but the next one does not get it again


def test_a_write_through_another_process_of_the_server_is_seen_at_once(
    make_registry, migrated, tmp_path: Path
) -> None:
    """Two workers of one server share a stamp: with the notification switched off, the
    reader still sees the writer's change on its very next read, with no waiting at all."""
    stamp = SharedStamp.create()
    try:
        reader = make_registry(cache_reads=True, cache_max_age=HOUR, shared_stamp=stamp)
        writer = make_registry(cache_reads=True, cache_max_age=HOUR, shared_stamp=stamp)
        execute(migrated, "ALTER TABLE marts.staging_slots DISABLE TRIGGER staging_slots_notify")
        kept = reader.status()
        assert reader.status() is kept
        writer.claim(2, "JA-5", "erin", timedelta(days=1))
        assert slot(reader, 2).task == "JA-5"
        writer.release(2, "erin", task="JA-5")
        assert not reader.get(2).claimed
        unchanged = reader.status()
        assert reader.status() is unchanged  # a stamp that did not move keeps the cache
    finally:
        stamp.unlink()


def test_a_closed_cache_reads_the_database_and_listens_no_more(make_registry, migrated) -> None:
    registry = make_registry(cache_reads=True, cache_max_age=HOUR)
    registry.status()
    assert len(listener_pids(migrated)) == 1
    registry._cache.close()  # type: ignore[union-attr]
    eventually(lambda: listener_pids(migrated) == [])
    assert registry.status() is not registry.status()
    assert listener_pids(migrated) == []
