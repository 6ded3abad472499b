"""Server-side deploys on the sandbox: the API queues, deploy workers (real processes) run the
CLI's deploy and rollback, and a worker killed with SIGKILL leaves its request to another."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.sample_repo import push_branch
from staging_ops.inventory import load_inventory
from staging_ops.registry import PostgresRegistry
from staging_ops.web import create_app
from staging_ops.web.auth import mint_token
from staging_ops.web.server import BackgroundServer
from staging_ops.web.webhooks.routes import GITHUB_SECRET_ENV, MAX_BODY
from tests.conftest import ROOT, execute
from tests.sandbox.deploying import commit_of, deploy, served, worker
from tests.sandbox.slots import slots_for
from tests.webhook_fixtures import github_headers, pushed

# SLOT: deployed by the module; FREE_SLOT: left free (cleaned by the conftest's module_slots).
SLOT, FREE_SLOT = slots_for(__name__)
TASK = f"JA-{SLOT}"
SECRET = "test-secret-for-the-staging-api-0123456789"
GITHUB_SECRET = "push-to-deploy-test-secret"
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

    def push(
        self,
        payload: object,
        secret: str = GITHUB_SECRET,
        body: bytes | None = None,
        delivery: str | None = None,
    ):
        import json

        import requests

        body = json.dumps(payload).encode() if body is None else body
        return requests.post(
            self.url + BASE + "/webhooks/github",
            data=body,
            headers=github_headers(secret, body, "push", delivery),
            timeout=30,
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
    before = os.environ.get(GITHUB_SECRET_ENV)
    os.environ[GITHUB_SECRET_ENV] = GITHUB_SECRET  # read by create_app
    try:
        inventory = load_inventory(sandbox.inventory_path)
        app = create_app(registry, jwt_secret=SECRET, inventory=inventory)
    finally:
        os.environ.pop(GITHUB_SECRET_ENV)
        if before is not None:
            os.environ[GITHUB_SECRET_ENV] = before
    with BackgroundServer(app, threads=4) as running:
        yield Server(running.url, dsn)
    registry.close()


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
        (SLOT, {"branch": "no-such-branch"}, 404, "branch not found"),
        (SLOT, {"branch": "feat-x", "task": "JA-999"}, 409, "held by"),
        (SLOT, {"branch": "feat-x", "force": True}, 400, "unknown field"),
        (SLOT, {"branch": "-x"}, 400, "branch"),
        (FREE_SLOT, {"branch": "main"}, 409, "free"),
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


def held_branch(server: Server) -> str:
    return execute(
        server.dsn, "SELECT branch FROM marts.staging_slots WHERE slot_id = %s", (SLOT,)
    )[0][0]


def deploy_events(dsn: str) -> int:
    return execute(
        dsn,
        "SELECT count(*) FROM marts.staging_slot_events WHERE action = 'deploy' AND slot_id = %s",
        (SLOT,),
    )[0][0]


def test_a_signed_push_deploys_the_pushed_commit(sandbox, server) -> None:
    branch = held_branch(server)
    commit = push_branch(sandbox.repo_path, branch, {"PUSHED.txt": "one"}, base=branch)
    with worker(sandbox):
        answer = server.push(pushed(branch, commit))
        assert answer.status_code == 200 and answer.json()["applied"], answer.text
        (queued,) = answer.json()["deploys"]
        done, _ = server.wait(queued["id"])
    assert done["state"] == "done" and done["via"] == "push", done
    assert served(sandbox, SLOT) == commit
    action, via, actor, _ = history(server.dsn)[0]
    assert (action, via, actor) == ("deploy", "push", "alice")
    # The same commit pushed again (a new delivery, not a replay: its body differs): nothing
    # to deploy again.
    with worker(sandbox):
        again = server.push({**pushed(branch, commit), "before": "e" * 40})
        done, _ = server.wait(again.json()["deploys"][0]["id"])
    assert done["state"] == "done" and "already serves" in done["result"]["skipped"]
    assert history(server.dsn)[0][:2] == ("deploy", "push")


def test_a_push_deploys_its_own_commit_not_the_newer_head(sandbox, server) -> None:
    branch = held_branch(server)
    pushed_first = push_branch(sandbox.repo_path, branch, {"PUSHED.txt": "A"}, base=branch)
    push_branch(sandbox.repo_path, branch, {"PUSHED.txt": "B"}, base=branch)  # no webhook yet
    with worker(sandbox):
        answer = server.push(pushed(branch, pushed_first))
        done, _ = server.wait(answer.json()["deploys"][0]["id"])
    assert done["state"] == "done" and done["result"]["commit"] == pushed_first, done
    assert served(sandbox, SLOT) == pushed_first


def test_five_pushes_in_a_row_deploy_the_newest_once(sandbox, server) -> None:
    branch = held_branch(server)
    commits = [
        push_branch(sandbox.repo_path, branch, {"PUSHED.txt": str(n)}, base=branch)
        for n in range(5)
    ]
    before = deploy_events(server.dsn)
    with worker(sandbox):
        started = time.monotonic()
        ids = [server.push(pushed(branch, c)).json()["deploys"][0]["id"] for c in commits]
        assert time.monotonic() - started < 2
        done, _ = server.wait(ids[-1])
    assert done["state"] == "done" and done["commit"] == commits[-1]
    states = execute(
        server.dsn,
        "SELECT state FROM marts.staging_deploy_requests WHERE id = ANY(%s) ORDER BY id",
        (ids,),
    )
    assert [s for (s,) in states] == ["superseded"] * 4 + ["done"]
    assert served(sandbox, SLOT) == commits[-1]
    assert deploy_events(server.dsn) == before + 1


def test_a_force_push_deploys_the_new_head(sandbox, server) -> None:
    branch = held_branch(server)
    rewritten = push_branch(sandbox.repo_path, branch, {"PUSHED.txt": "rewritten"}, base="main")
    with worker(sandbox):
        answer = server.push(pushed(branch, rewritten, forced=True))
        assert "(forced)" in answer.json()["message"]
        done, _ = server.wait(answer.json()["deploys"][0]["id"])
    assert done["state"] == "done"
    assert served(sandbox, SLOT) == rewritten


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("unheld branch", 202),
        ("other repository", 202),
        ("deleted branch", 202),
        ("forged", 401),
        ("oversized", 413),
        ("replayed", 200),
    ],
)
def test_pushes_that_deploy_nothing_queue_nothing(server, case: str, status: int) -> None:
    branch = held_branch(server)
    sha = "c" * 40
    before = server.queued()
    if case == "unheld branch":
        answer = server.push(pushed("nobody-holds-this", sha))
    elif case == "other repository":
        answer = server.push(pushed(branch, sha, repository="someone/job-search"))
    elif case == "deleted branch":
        answer = server.push(pushed(branch, "", deleted=True))
        outcome = execute(
            server.dsn,
            "SELECT outcome FROM marts.staging_webhook_deliveries"
            " ORDER BY received_at DESC LIMIT 1",
        )[0][0]
        assert "deleted" in outcome and "nothing to deploy" in outcome
    elif case == "replayed":
        first = server.push(pushed("nobody-holds-this", "f" * 40), delivery="replayed-delivery")
        assert first.status_code == 202
        answer = server.push(pushed("nobody-holds-this", "f" * 40), delivery="replayed-delivery")
        assert "applied before" in answer.json()["message"]
    elif case == "forged":
        answer = server.push(pushed(branch, sha), secret="not-the-secret")
    else:
        answer = server.push(None, body=b" " * (MAX_BODY + 1))
    assert answer.status_code == status, answer.text
    assert answer.json()["applied"] is False
    assert server.queued() == before


def test_a_claim_with_auto_deploy_off_is_not_deployed_by_a_push(server) -> None:
    branch = held_branch(server)
    claim = server.call("PUT", "/slots", json={"slot_id": SLOT, "task": TASK, "auto_deploy": False})
    assert claim.status_code == 200 and claim.json()["auto_deploy"] is False, claim.text
    before = server.queued()
    try:
        answer = server.push(pushed(branch, "d" * 40))
        assert answer.status_code == 202 and "auto_deploy off" in answer.json()["message"]
        assert server.queued() == before
    finally:
        again = server.call(
            "PUT", "/slots", json={"slot_id": SLOT, "task": TASK, "auto_deploy": True}
        )
        assert again.json()["auto_deploy"] is True
