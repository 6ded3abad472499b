"""`invoke api.serve` as operators run it: granian with several worker processes, each with
its own connection pool and change listener, on a real registry database.

A write answered by one worker must be what every worker answers next, although each keeps
the slot list in memory: the workers share a stamp for their own writes, and a notification
brings them everyone else's.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from staging_ops.inventory import load_inventory
from staging_ops.registry import migrate
from tests.conftest import ROOT, execute, free_port, run_invoke
from tests.sandbox.api_server import (
    SECRET,
    Server,
    children,
    listening_sockets,
    serving,
    wait_for,
)

NOTIFY_GRACE = 0.2  # seconds a notification may take to reach every worker


@pytest.fixture
def server(registry_dsn: str, test_inventory_path: Path) -> Iterator[Server]:
    migrate(registry_dsn, load_inventory(test_inventory_path))
    env = {
        "STAGING_REGISTRY_DSN": registry_dsn,
        "STAGING_API_JWT_SECRET": SECRET,
        "STAGING_INVENTORY": str(test_inventory_path),
        # No reaper process beside the workers here (these tests count the server's
        # children); tests/sandbox/test_scheduled_reap.py runs it.
        "STAGING_REAP_INTERVAL": "off",
    }
    with serving(env) as running:
        yield running


def test_serves_from_two_worker_processes(server: Server) -> None:
    wait_for(lambda: len(children(server.process.pid)) == 2)  # workers may still be starting
    response = server.call("GET", "/slots")
    assert response.status_code == 200, response.text
    assert [s["slot_id"] for s in response.json()["slots"]] == list(range(1, 11))
    assert server.call("GET", "/openapi.json").status_code == 200
    page = requests.get(server.url + "/staging", timeout=10)
    assert page.status_code == 200 and "dashboard.js" in page.text
    script = requests.get(server.url + "/staging/static/dashboard.js", timeout=10)
    static = ROOT / "staging_ops" / "web" / "static" / "dashboard.js"
    assert script.content == static.read_bytes()


def test_a_worker_that_dies_is_replaced(server: Server) -> None:
    wait_for(lambda: len(children(server.process.pid)) == 2)
    victim = children(server.process.pid)[0]
    os.kill(victim, signal.SIGKILL)
    # Requests queued at the victim (each worker has its own listening socket) are lost, as
    # with any server whose worker is killed; what matters is that the server lives on.
    workers = lambda: children(server.process.pid)  # noqa: E731
    wait_for(lambda: len(workers()) == 2 and victim not in workers(), 15)
    wait_for(lambda: listening_sockets(server.port) == 2)
    for _ in range(10):
        assert server.call("GET", "/slots").status_code == 200


def test_every_worker_answers_each_write_at_once(server: Server, registry_dsn: str) -> None:
    """Claims and releases through the server, each followed at once by reads that may reach
    either worker: each worker keeps the list in memory (both listen for changes), yet none
    may answer the slot as it was before the write (the workers share a stamp). The
    notification is switched off here, so that the stamp alone must tell the other worker."""
    execute(registry_dsn, "ALTER TABLE marts.staging_slots DISABLE TRIGGER staging_slots_notify")
    for _ in range(20):  # fill both workers' caches
        assert server.call("GET", "/slots").status_code == 200
    listeners = execute(
        registry_dsn,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND query ILIKE 'LISTEN%%'",
    )
    assert listeners == [(2,)]
    for n in range(1, 10):
        claim = server.call("PUT", "/slots", json={"slot_id": n, "task": f"JA-{n}", "ttl": "1h"})
        assert claim.status_code == 200, claim.text
        for _ in range(6):
            slots = server.call("GET", "/slots").json()["slots"]
            assert slots[n - 1]["task"] == f"JA-{n}", f"a worker answered a stale slot {n}"
            assert server.call("GET", f"/slots/{n}").json()["slot"]["status"] == "claimed"
        release = server.call("POST", f"/slots/{n}/release", json={"task": f"JA-{n}"})
        assert release.status_code == 200, release.text
        for _ in range(6):
            assert server.call("GET", f"/slots/{n}").json()["slot"]["status"] == "free"


def test_a_claim_made_elsewhere_reaches_every_worker(server: Server, registry_dsn: str) -> None:
    for _ in range(20):
        server.call("GET", "/slots")
    env = {"STAGING_REGISTRY_DSN": registry_dsn, "STAGING_API_URL": "", "STAGING_API_TOKEN": ""}
    claimed = run_invoke("claim", "--slot", "3", "--task", "JA-33", "--owner", "cli", env=env)
    assert claimed.returncode == 0, claimed.stdout + claimed.stderr
    # The CLI process has exited by now; each worker may still be a moment from reading the
    # notification, so allow a little, but far less than the 2 s a kept list may live.
    deadline = time.monotonic() + 2 * NOTIFY_GRACE
    answers = []
    while time.monotonic() < deadline:
        answers.append(server.call("GET", "/slots/3").json()["slot"]["task"])
    assert answers and set(answers[-5:]) == {"JA-33"}, answers


def test_stops_on_sigterm(server: Server) -> None:
    workers = children(server.process.pid)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(10) == 0
    for pid in workers:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


@pytest.mark.parametrize(
    ("env", "code", "words"),
    [
        ({"STAGING_API_JWT_SECRET": ""}, 2, "STAGING_API_JWT_SECRET is not set"),
        ({"STAGING_API_JWT_SECRET": "short"}, 2, "at least 32 bytes"),
        ({"STAGING_REGISTRY_DSN": "postgresql://u:hunter2@127.0.0.1:1/db"}, 1, "127.0.0.1:1"),
    ],
)
def test_bad_settings_end_it_before_any_worker_starts(
    registry_dsn: str, env: dict[str, str], code: int, words: str
) -> None:
    base = {"STAGING_REGISTRY_DSN": registry_dsn, "STAGING_API_JWT_SECRET": SECRET}
    result = run_invoke("api.serve", "--port", str(free_port()), env={**base, **env}, timeout=30)
    assert_one_error(result, code, words)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--workers", "-1"], "invalid workers '-1': expected a whole number (0-64)"),
        (["--port", "70000"], "invalid port '70000': must be between 1 and 65535"),
    ],
)
def test_bad_flags_are_refused(registry_dsn: str, args: list[str], words: str) -> None:
    env = {"STAGING_REGISTRY_DSN": registry_dsn, "STAGING_API_JWT_SECRET": SECRET}
    assert_one_error(run_invoke("api.serve", *args, env=env, timeout=30), 2, words)


def test_a_port_in_use_is_refused_not_shared(registry_dsn: str) -> None:
    """granian binds with SO_REUSEPORT, which would share the port with an older server."""
    env = {"STAGING_REGISTRY_DSN": registry_dsn, "STAGING_API_JWT_SECRET": SECRET}
    with socket.socket() as older:
        older.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        older.bind(("127.0.0.1", 0))
        older.listen()
        port = older.getsockname()[1]
        result = run_invoke("api.serve", "--port", str(port), env=env, timeout=30)
    assert_one_error(result, 1, f"cannot listen on 127.0.0.1:{port}")


def assert_one_error(result: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and words in errors[0], result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
