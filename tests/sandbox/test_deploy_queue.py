"""The deploy queue on a real registry database: who takes what, leases, supersede, and the
database's own guard of one running request per slot."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest

from staging_ops.inventory import load_inventory
from staging_ops.registry import migrate
from staging_ops.registry.deploy_queue import DeployQueue, NewRequest
from staging_ops.slots.deploy_requests import Progress
from tests.conftest import execute

SHORT = timedelta(seconds=0.3)


@pytest.fixture
def queue(registry_dsn: str, test_inventory_path: Path):
    migrate(registry_dsn, load_inventory(test_inventory_path))
    queue = DeployQueue(registry_dsn, max_connections=8)
    yield queue
    queue.close()


def deploy(slot: int, branch: str = "main") -> NewRequest:
    return NewRequest(slot, "deploy", "alice", "api", branch=branch, task=f"JA-{slot}")


def test_one_request_per_slot_runs_and_the_newest_queued_wins(queue: DeployQueue) -> None:
    first, second = queue.enqueue(deploy(4)), queue.enqueue(deploy(4, "feat-x"))
    other = queue.enqueue(deploy(5))
    assert queue.get(first.id).state == "superseded"
    assert queue.get(first.id).superseded_by == second.id
    assert queue.claim("w1").id == second.id
    assert queue.claim("w2").id == other.id
    third = queue.enqueue(deploy(4))
    assert queue.claim("w3") is None  # slot 4 runs second; third waits for it
    assert queue.finish(second.id, "w1", "done", Progress("record"))
    assert queue.claim("w3").id == third.id


def test_only_the_worker_holding_a_request_writes_to_it(queue: DeployQueue) -> None:
    request = queue.enqueue(deploy(4))
    queue.claim("w1", lease=SHORT)
    assert not queue.heartbeat(request.id, "w2", Progress("x"))
    assert queue.heartbeat(request.id, "w1", Progress("running step 4: fetch"), SHORT)
    assert queue.get(request.id).step == "running step 4: fetch"
    time.sleep(0.5)  # w1 stops beating (killed): its lease runs out
    retaken = queue.claim("w2")
    assert (retaken.id, retaken.attempts, retaken.worker) == (request.id, 2, "w2")
    assert not queue.heartbeat(request.id, "w1", Progress("late"))
    assert not queue.finish(request.id, "w1", "done", Progress())
    assert queue.finish(request.id, "w2", "done", Progress("record"))
    assert queue.get(request.id).state == "done"


def test_a_request_whose_workers_keep_dying_is_failed(queue: DeployQueue) -> None:
    request = queue.enqueue(deploy(4))
    for n in range(3):
        assert queue.claim(f"w{n}", lease=SHORT, max_attempts=3).id == request.id
        time.sleep(0.4)
    assert queue.claim("w9", max_attempts=3) is None
    failed = queue.get(request.id)
    assert failed.state == "failed" and "stopped answering 3 times" in failed.error


def test_concurrent_workers_never_take_one_slot_twice(queue: DeployQueue) -> None:
    for slot in range(1, 11):
        for _ in range(3):
            queue.enqueue(deploy(slot))
    with ThreadPoolExecutor(max_workers=8) as pool:
        taken = list(pool.map(lambda n: queue.claim(f"w{n}"), range(30)))
    slots = [r.slot_id for r in taken if r is not None]
    assert sorted(slots) == list(range(1, 11))  # each slot once, the others found it busy


def test_the_database_refuses_two_running_requests_for_a_slot(queue, registry_dsn) -> None:
    queue.enqueue(deploy(4))
    queue.claim("w1")
    queue.enqueue(deploy(4))
    with pytest.raises(psycopg2.errors.UniqueViolation):
        execute(
            registry_dsn,
            "UPDATE marts.staging_deploy_requests SET state = 'running', worker = 'w2',"
            " lease_until = now() WHERE state = 'queued' AND slot_id = 4",
        )
