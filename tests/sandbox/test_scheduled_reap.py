"""The scheduled reap, run by the real API server at a 1 s interval on a real registry: an
expired claim is freed within a couple of seconds (`via reap`), a reaper never runs while
another holds the advisory lock, and two servers never both reap the same claim."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest

from staging_ops.claims.scheduled_reap import REAP_LOCK, interval_from_env
from staging_ops.errors import BadInput
from staging_ops.inventory import load_inventory
from staging_ops.registry import PostgresRegistry, migrate
from tests.conftest import execute
from tests.sandbox.api_server import wait_for
from tests.sandbox.webhook_server import api_server

FAST = {"STAGING_REAP_INTERVAL": "1"}


@pytest.fixture
def registry(registry_dsn: str, test_inventory_path: Path) -> Iterator[PostgresRegistry]:
    migrate(registry_dsn, load_inventory(test_inventory_path))
    reg = PostgresRegistry(registry_dsn)
    yield reg
    reg.close()


def expired_claim(registry: PostgresRegistry, slot: int, task: str) -> None:
    registry.claim(slot, task, "alice@example.com", timedelta(hours=1))
    execute(
        registry.dsn,
        "UPDATE marts.staging_slots SET expires_at = now() - interval '1 second'"
        " WHERE slot_id = %s",
        (slot,),
    )


def reaps(registry: PostgresRegistry, slot: int) -> list[tuple[str, str, str]]:
    return [(e.action, e.via, e.actor) for e in registry.history(slot, 50) if e.action == "reap"]


def test_the_server_reaps_an_expired_claim_within_seconds(
    registry: PostgresRegistry, test_inventory_path: Path
) -> None:
    with api_server(registry.dsn, test_inventory_path, FAST):
        expired_claim(registry, 3, "JA-3")
        started = time.monotonic()
        wait_for(lambda: registry.get(3).status == "free", timeout=5)
        assert time.monotonic() - started < 3
        assert reaps(registry, 3) == [("reap", "reap", "scheduled-reap")]
        assert "expired" in (registry.history(3, 1)[0].detail or "")
        registry.claim(4, "JA-4", "alice@example.com", timedelta(hours=1))
        time.sleep(2.5)  # a live claim stays through several rounds
        assert registry.get(4).task == "JA-4"


def test_no_round_runs_while_another_reaper_holds_the_lock(
    registry: PostgresRegistry, test_inventory_path: Path
) -> None:
    holder = psycopg2.connect(registry.dsn)
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (REAP_LOCK,))
        with api_server(registry.dsn, test_inventory_path, FAST):
            expired_claim(registry, 5, "JA-5")
            time.sleep(3)  # three rounds, each finding the lock taken
            assert registry.get(5).task == "JA-5"
            with holder.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (REAP_LOCK,))
            wait_for(lambda: registry.get(5).status == "free", timeout=5)
    finally:
        holder.close()


def test_two_servers_never_both_reap_a_claim(
    registry: PostgresRegistry, test_inventory_path: Path
) -> None:
    with (
        api_server(registry.dsn, test_inventory_path, FAST, workers=1),
        api_server(registry.dsn, test_inventory_path, FAST, workers=1),
    ):
        for round_ in range(3):
            slots = [1 + round_ * 3, 2 + round_ * 3, 3 + round_ * 3]
            for slot in slots:
                expired_claim(registry, slot, f"JA-{slot}")
            wait_for(lambda s=slots: all(registry.get(n).status == "free" for n in s), 5)
        time.sleep(1.5)
        for slot in range(1, 10):
            assert len(reaps(registry, slot)) == 1, registry.history(slot, 10)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", 300.0), ("1", 1.0), ("300", 300.0), ("2.5", 2.5), ("off", None), ("0", None)],
)
def test_the_interval_setting(value: str, expected: float | None) -> None:
    assert interval_from_env({"STAGING_REAP_INTERVAL": value}) == expected


@pytest.mark.parametrize("value", ["301", "-1", "soon", "nan"])
def test_a_bad_interval_is_refused(value: str) -> None:
    with pytest.raises(BadInput, match="STAGING_REAP_INTERVAL"):
        interval_from_env({"STAGING_REAP_INTERVAL": value})
