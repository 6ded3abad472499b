"""Server-side deploys on the sandbox: the API queues, deploy workers (real processes) run the
CLI's deploy and rollback, and a worker killed with SIGKILL leaves its request to another."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devtools.sample_repo import push_branch
from staging_ops.inventory import load_inventory
from staging_ops.registry import PostgresRegistry
from staging_ops.web import create_app
from staging_ops.web.auth import mint_token
from staging_ops.web.server import BackgroundServer
from tests.conftest import ROOT, execute
from tests.test_deploy import commit_of, deploy, served

SLOT = 6
TASK = f"JA-{SLOT}"
SECRET = "test-secret-for-the-staging-api-0123456789"
BASE = "/api/staging"


class Server:
    def __init__(self, url: str, dsn: str) -> None:
        self.url, self.dsn = url, dsn

    def call(self, method: str, path: str, **kwargs: object):
        import requests

        token = mint_token(SECRET, "qa@example.com")
        headers = {"Authorization": f"Bearer {token}"}
        return requests.request(
            method, self.url + BASE + path, headers=headers, timeout=30, **kwargs
        )

    def queued(self) -> int:
        return execute(self.dsn, "SELECT count(*) FROM marts.staging_deploy_requests")[0][0]

    def wait(self, request_id: int, timeout: float = 180) -> tuple[dict, list[str]]:
        """The request once finished, and every `step` seen while polling every 0.2 s."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.call("GET", f"/deploys/{request_id}").json()["request"]
            if body["step"] and body["step"] not in seen:
                seen.append(body["step"])
            if body["state"] not in ("queued", "running"):
                return body, seen
            time.sleep(0.2)
        raise AssertionError(f"request {request_id} did not finish: {body}")


@pytest.fixture(scope="module")
def server(sandbox, provisioned) -> Iterator[Server]:
    first = deploy(sandbox, "main", SLOT)
    assert first.returncode == 0, first.stdout + first.stderr
    dsn = sandbox.env()["STAGING_REGISTRY_DSN"]
    registry = PostgresRegistry(dsn, max_connections=4)
    app = create_app(registry, jwt_secret=SECRET, inventory=load_inventory(sandbox.inventory_path))
    with BackgroundServer(app, threads=4) as running:
        yield Server(running.url, dsn)
    registry.close()


@contextmanager
def worker(box, *args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        [sys.executable, "-m", "staging_ops.web.deploy_worker", *args],
        cwd=ROOT,
        env={**os.environ, **box.env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


def history(dsn: str, slot: int = SLOT, limit: int = 5) -> list[tuple]:
    return execute(
        dsn,
        "SELECT action, via, actor, detail FROM marts.staging_slot_events"
        " WHERE slot_id = %s ORDER BY id DESC LIMIT %s",
        (slot, limit),
    )


def test_a_queued_deploy_runs_the_cli_steps_and_serves_the_commit(sandbox, server) -> None:
    with worker(sandbox):
        answer = server.call("POST", f"/slots/{SLOT}/deploy", json={"branch": "feat-x"})
        assert answer.status_code == 202, answer.text
        assert answer.headers["Location"] == answer.json()["url"]
        done, seen = server.wait(answer.json()["request"]["id"])
    assert done["state"] == "done", done
    assert served(sandbox, SLOT) == commit_of(sandbox, "feat-x")
    assert [s["step"] for s in done["steps"]][:4] == ["claim", "connect", "lock", "fetch"]
    assert any(s.startswith("running step") for s in seen), seen
    action, via, actor, detail = history(server.dsn)[0]
    assert (action, via, actor) == ("deploy", "api", "qa@example.com"), detail


def test_rollback_from_the_api_goes_back_to_a_verified_release(sandbox, server) -> None:
    listing = server.call("GET", f"/slots/{SLOT}/releases").json()
    live = [r for r in listing["releases"] if r["live"]]
    assert live and live[0]["commit"] == served(sandbox, SLOT)
    target = next(r for r in listing["releases"] if r["state"] == "verified" and not r["live"])
    with worker(sandbox):
        answer = server.call("POST", f"/slots/{SLOT}/rollback", json={"release": target["release"]})
        assert answer.status_code == 202, answer.text
        done, _ = server.wait(answer.json()["request"]["id"])
    assert done["state"] == "done", done
    assert served(sandbox, SLOT) == target["commit"]
    after = server.call("GET", f"/slots/{SLOT}/releases").json()
    assert next(r for r in after["releases"] if r["live"])["release"] == target["release"]
    assert after["deploys"][0]["kind"] == "rollback"


@pytest.mark.parametrize(
    ("slot", "body", "status", "word"),
    [
        (SLOT, {"branch": "no-such-branch"}, 400, "branch not found"),
        (SLOT, {"branch": "feat-x", "task": "JA-999"}, 409, "held by"),
        (SLOT, {"branch": "feat-x", "force": True}, 400, "unknown field"),
        (SLOT, {"branch": "-x"}, 400, "branch"),
        (9, {"branch": "main"}, 409, "free"),
        (77, {"branch": "main"}, 404, "slot"),
    ],
)
def test_bad_deploy_requests_are_one_line_and_queue_nothing(
    server, slot: int, body: dict, status: int, word: str
) -> None:
    before = server.queued()
    answer = server.call("POST", f"/slots/{slot}/deploy", json=body)
    assert answer.status_code == status, answer.text
    assert word in answer.json()["error"] and "\n" not in answer.json()["error"]
    assert server.queued() == before


def test_newer_requests_supersede_queued_ones(sandbox, server) -> None:
    ids = [
        server.call("POST", f"/slots/{SLOT}/deploy", json={"branch": "main"}).json()["request"][
            "id"
        ]
        for _ in range(3)
    ]
    states = execute(
        server.dsn,
        "SELECT id, state, superseded_by FROM marts.staging_deploy_requests WHERE id = ANY(%s)"
        " ORDER BY id",
        (ids,),
    )
    assert states == [  # each by the one queued after it
        (ids[0], "superseded", ids[1]),
        (ids[1], "superseded", ids[2]),
        (ids[2], "queued", None),
    ]
    with worker(sandbox):
        done, _ = server.wait(ids[2])
    assert done["state"] == "done" and done["attempts"] == 1
    assert served(sandbox, SLOT) == commit_of(sandbox, "main")


def test_a_worker_killed_mid_deploy_leaves_the_request_to_another(sandbox, server) -> None:
    commit = push_branch(sandbox.repo_path, "ja-6-killed", {"NOTE.txt": "killed"})
    events_before = execute(
        server.dsn, "SELECT count(*) FROM marts.staging_slot_events WHERE action = 'deploy'"
    )[0][0]
    answer = server.call("POST", f"/slots/{SLOT}/deploy", json={"branch": "ja-6-killed"})
    request_id = answer.json()["request"]["id"]
    crash = {"STAGING_OPS_CRASH_AT": "deploy:after-fetch"}
    with worker(sandbox, "--lease", "2", env=crash) as doomed:
        assert doomed.wait(120) == -signal.SIGKILL
    row = execute(
        server.dsn,
        "SELECT state, attempts FROM marts.staging_deploy_requests WHERE id = %s",
        (request_id,),
    )
    assert row == [("running", 1)]  # left running by the dead worker: its lease runs out
    with worker(sandbox):
        done, _ = server.wait(request_id)
    assert done["state"] == "done" and done["attempts"] == 2, done
    assert served(sandbox, SLOT) == commit
    events_after = execute(
        server.dsn, "SELECT count(*) FROM marts.staging_slot_events WHERE action = 'deploy'"
    )[0][0]
    assert events_after == events_before + 1  # deployed once, not twice


def test_server_deploys_are_off_without_the_inventory_setting(registry_dsn, tmp_path: Path) -> None:
    from staging_ops.registry import migrate
    from tests.conftest import DEFAULT_INVENTORY

    inventory = load_inventory(DEFAULT_INVENTORY)
    assert not inventory.deploys.server
    migrate(registry_dsn, inventory)
    registry = PostgresRegistry(registry_dsn)
    app = create_app(registry, jwt_secret=SECRET, inventory=inventory)
    with BackgroundServer(app) as running:
        answer = Server(running.url, registry_dsn).call("POST", "/slots/4/deploy", json={})
    registry.close()
    assert answer.status_code == 404 and "server deploys are off" in answer.json()["error"]
    run = subprocess.run(
        [sys.executable, "-m", "staging_ops.web.deploy_worker", "--once"],
        cwd=ROOT,
        env={
            **os.environ,
            "STAGING_INVENTORY": str(DEFAULT_INVENTORY),
            "STAGING_REGISTRY_DSN": registry_dsn,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2 and "server deploys are off" in run.stderr
