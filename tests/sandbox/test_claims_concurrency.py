"""Many operators claiming at the same moment, as real `invoke claim` processes.

To make "at the same moment" real rather than hoped for, the test holds an ACCESS EXCLUSIVE
lock on marts.staging_slots while the processes start, waits until all of them are blocked on
it inside their claim statement, then lets them go together. Both backends: directly on
PostgreSQL, and through the Staging API (whose pool is large enough for every process).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from staging_ops.inventory import load_inventory
from staging_ops.registry import PostgresRegistry, migrate
from staging_ops.web import create_app
from staging_ops.web.auth import mint_token
from staging_ops.web.server import BackgroundServer

ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).parent / "invoke")
SECRET = "test-secret-for-the-staging-api-0123456789"
REGISTRY_VARS = ("STAGING_REGISTRY_DSN", "STAGING_API_URL", "STAGING_API_TOKEN")
GATE_TIMEOUT = 30.0


@pytest.fixture(params=["postgres", "api"])
def registry_env(
    request: pytest.FixtureRequest, registry_dsn: str, test_inventory_path: Path
) -> Iterator[dict[str, str]]:
    """The environment of an operator using one backend, on a freshly migrated registry."""
    migrate(registry_dsn, load_inventory(test_inventory_path))
    env = {k: v for k, v in os.environ.items() if k not in REGISTRY_VARS}
    env["STAGING_INVENTORY"] = str(test_inventory_path)
    if request.param == "postgres":
        yield {**env, "STAGING_REGISTRY_DSN": registry_dsn}
        return
    registry = PostgresRegistry(registry_dsn, max_connections=25, cache_reads=True)
    with BackgroundServer(create_app(registry, jwt_secret=SECRET), threads=24) as server:
        yield {
            **env,
            "STAGING_API_URL": server.url,
            "STAGING_API_TOKEN": mint_token(SECRET, "tester"),
        }
    registry.close()


def run_together(
    dsn: str, env: dict[str, str], commands: list[list[str]]
) -> list[subprocess.CompletedProcess]:
    """Start every command while the slots table is locked; release them all at once."""
    gate = psycopg2.connect(dsn)
    with gate.cursor() as cur:
        cur.execute("LOCK TABLE marts.staging_slots IN ACCESS EXCLUSIVE MODE")
        procs = [
            subprocess.Popen(
                [INVOKE, *cmd],
                cwd=ROOT,
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for cmd in commands
        ]
        deadline = time.monotonic() + GATE_TIMEOUT
        waiting = 0
        while waiting < len(commands) and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break  # someone finished without waiting: the assertions below will say who
            time.sleep(0.05)
            # Statistics views are snapshotted per transaction: take a fresh look each time.
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            waiting = cur.fetchone()[0]
    gate.commit()  # lets them all go at once
    gate.close()
    results = []
    for proc, cmd in zip(procs, commands, strict=True):
        out, err = proc.communicate(timeout=60)
        results.append(subprocess.CompletedProcess(cmd, proc.returncode, out, err))
    assert waiting == len(commands), [r.stderr for r in results]
    return results


def slots_by_task(dsn: str) -> dict[str, int]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT task, slot_id FROM marts.staging_slots WHERE status = 'claimed'")
        rows = dict(cur.fetchall())
    conn.close()
    return rows


def test_twenty_processes_claim_slot_4_exactly_one_wins(
    registry_env: dict[str, str], registry_dsn: str
) -> None:
    tasks = [f"JA-{n}" for n in range(1, 21)]
    results = run_together(
        registry_dsn,
        registry_env,
        [["claim", "--slot", "4", "--task", t, "--owner", f"dev{t}"] for t in tasks],
    )
    winners = [r for r in results if r.returncode == 0]
    losers = [r for r in results if r.returncode != 0]
    assert len(winners) == 1, [r.stderr for r in results]
    winner = re.search(r"for (JA-\d+)", winners[0].stdout).group(1)
    assert slots_by_task(registry_dsn) == {winner: 4}
    assert len(losers) == 19
    for loser in losers:
        assert loser.returncode == 3, loser.stderr
        assert f"held by task {winner} (owner dev{winner})" in loser.stderr
        assert "Traceback" not in loser.stderr


def test_twelve_auto_claims_get_nine_distinct_qa_slots(
    registry_env: dict[str, str], registry_dsn: str
) -> None:
    tasks = [f"QA-{n}" for n in range(1, 13)]
    results = run_together(
        registry_dsn,
        registry_env,
        [["claim", "--slot", "auto", "--task", t, "--owner", "qa"] for t in tasks],
    )
    ok = [r for r in results if r.returncode == 0]
    refused = [r for r in results if r.returncode != 0]
    assert len(ok) == 9, [r.stderr for r in results]
    assert sorted(slots_by_task(registry_dsn).values()) == list(range(1, 10))  # 10 untouched
    assert len(refused) == 3
    for result in refused:
        assert result.returncode == 3 and "no free QA slot" in result.stderr, result.stderr
