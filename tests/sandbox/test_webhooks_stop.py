"""`auto_release_stop = true`: a webhook's release also stops the slot's services, under its
deploy lock, as `invoke release --stop` does. The real deploy, the real API server and the
sandbox droplet's units; the default (off) leaves them serving. A delivery that arrives while
a deploy holds the lock is not done and not recorded: its redelivery is."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from datetime import timedelta

import psycopg2
import pytest
import requests

from devtools.sample_repo import push_branch
from staging_ops.inventory import load_inventory
from staging_ops.registry import PostgresRegistry
from tests.conftest import INVOKE, ROOT, inventory_variant, run_invoke
from tests.sandbox.deploying import commit_of, served, wait_for_step
from tests.sandbox.slots import slot_for
from tests.sandbox.webhook_server import GITHUB_SECRET, api_server, post_linear
from tests.webhook_fixtures import github_headers, linear_done, merged_pr

SLOT = slot_for(__name__)
REPOSITORY = 'github_repository = "justapply/job-search"\n'


def _deploy(sandbox, inventory, task: str) -> None:
    result = run_invoke(
        "deploy", "--slot", str(SLOT), "--branch", "feat-x", "--task", task,
        env={**sandbox.env(), "STAGING_INVENTORY": str(inventory)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert served(sandbox, SLOT) == commit_of(sandbox, "feat-x")


@pytest.mark.parametrize("stop", [True, False], ids=["auto_release_stop", "default"])
def test_a_done_task_frees_its_slot_and_stops_it_only_when_the_inventory_says_so(
    sandbox, provisioned, tmp_path, stop: bool
) -> None:
    task = "JA-881" if stop else "JA-882"
    setting = f"auto_release_stop = {str(stop).lower()}\n"
    inventory = inventory_variant(sandbox, tmp_path, (REPOSITORY, REPOSITORY + setting))
    _deploy(sandbox, inventory, task)
    registry = PostgresRegistry(sandbox.registry_dsn)
    try:
        with api_server(sandbox.registry_dsn, inventory, workers=1) as server:
            answer = post_linear(server, linear_done(task), timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["applied"] is True
        assert registry.get(SLOT).status == "free"
        (release,) = [e for e in registry.history(SLOT, 5) if e.action == "release"][:1]
        assert release.via == "linear" and task in (release.detail or "")
        outcome = answer.json()["slots"][0]
        if stop:
            # Nothing of the slot answers any more, and the answer says so.
            assert served(sandbox, SLOT) is None
            assert outcome["outcome"].startswith("released, stopped job-search-ui@"), outcome
        else:
            assert outcome["outcome"] == "released", outcome
            assert served(sandbox, SLOT) == commit_of(sandbox, "feat-x")
    finally:
        registry.close()
        run_invoke("release", "--slot", str(SLOT), "--force", "--stop", env=sandbox.env())


def _deliveries(dsn: str, delivery: str) -> list[tuple[str, str]]:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT delivery_id, outcome FROM marts.staging_webhook_deliveries"
                " WHERE source = 'github' AND delivery_id = %s",
                (delivery,),
            )
            return cur.fetchall()
    finally:
        conn.close()


def test_a_merge_delivered_while_a_deploy_holds_the_lock_is_done_by_its_redelivery(
    sandbox, provisioned, tmp_path
) -> None:
    """The PR's branch is deployed; a second deploy of it holds the slot's lock (paused right
    after taking it, SIGSTOP: the lock stays held as long as its SSH channel is open) when the
    merged-PR delivery arrives. That delivery is answered 503 + Retry-After, the claim kept
    and nothing recorded; once the deploy has ended, GitHub's redelivery (the same
    X-GitHub-Delivery and body) releases the slot and stops it."""
    task, branch = "JA-884", "ja-884-merge-race"
    push_branch(sandbox.repo_path, branch, {"NOTE.txt": "ja-884\n"})
    inventory = inventory_variant(
        sandbox, tmp_path, (REPOSITORY, REPOSITORY + "auto_release_stop = true\n")
    )
    env = {**os.environ, **sandbox.env(), "STAGING_INVENTORY": str(inventory)}
    first = run_invoke(
        "deploy", "--slot", str(SLOT), "--branch", branch, "--task", task, env=env
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    registry = PostgresRegistry(sandbox.registry_dsn)
    body = json.dumps(merged_pr(branch, number=884)).encode()
    headers = github_headers(GITHUB_SECRET, body, "pull_request")
    deploy = subprocess.Popen(
        [INVOKE, "deploy", "--slot", str(SLOT), "--branch", branch, "--task", task],
        cwd=ROOT,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_step(deploy, "lock")
        os.kill(deploy.pid, signal.SIGSTOP)  # holding the lock
        with api_server(sandbox.registry_dsn, inventory, workers=1) as server:
            url = server.url + "/api/staging/webhooks/github"
            during = requests.post(url, data=body, headers=headers, timeout=30)
            assert during.status_code == 503, during.text
            assert during.headers["Retry-After"].isdigit()
            assert during.json()["applied"] is False
            assert "a deploy is already running" in during.json()["message"], during.text
            assert "not recorded" in during.json()["message"]
            state = registry.get(SLOT)
            assert state.claimed and state.task == task, state
            assert served(sandbox, SLOT) == commit_of(sandbox, branch)
            assert _deliveries(sandbox.registry_dsn, headers["X-GitHub-Delivery"]) == []

            os.kill(deploy.pid, signal.SIGCONT)
            out, err = deploy.communicate(timeout=240)
            assert deploy.returncode == 0, out + err

            again = requests.post(url, data=body, headers=headers, timeout=30)
        assert again.status_code == 200, again.text
        assert again.json()["applied"] is True
        outcome = again.json()["slots"][0]
        assert outcome["outcome"].startswith("released, stopped job-search-ui@"), outcome
        assert not registry.get(SLOT).claimed
        assert served(sandbox, SLOT) is None
        (release,) = [e for e in registry.history(SLOT, 5) if e.action == "release"][:1]
        assert release.via == "github" and "PR #884 merged" in (release.detail or "")
        (recorded,) = _deliveries(sandbox.registry_dsn, headers["X-GitHub-Delivery"])
        assert recorded[1].startswith(f"slot {SLOT} ({task}): released, stopped"), recorded
    finally:
        if deploy.poll() is None:
            os.kill(deploy.pid, signal.SIGCONT)
            deploy.kill()
            deploy.communicate(timeout=30)
        registry.close()
        run_invoke("release", "--slot", str(SLOT), "--force", "--stop", env=sandbox.env())


def test_a_delivery_for_an_unreachable_droplet_is_not_done_until_redelivered(
    sandbox, provisioned, tmp_path
) -> None:
    """The droplet cannot be reached (its SSH port refuses): the completed task's delivery is
    answered 503, the claim kept and nothing recorded; the same delivery, once the droplet is
    back (the inventory's port again), releases and stops the slot."""
    task = "JA-885"
    port = load_inventory(sandbox.inventory_path).hosts["h1"].port
    stop = (REPOSITORY, REPOSITORY + "auto_release_stop = true\n")
    reachable = inventory_variant(sandbox, tmp_path, stop)
    (tmp_path / "down").mkdir()
    unreachable = inventory_variant(
        sandbox, tmp_path / "down", stop, (f"port = {port}\n", "port = 1\n")
    )
    registry = PostgresRegistry(sandbox.registry_dsn)
    payload, delivery = linear_done(task), "2d5a3c1e-0000-4000-8000-000000000885"
    body = json.dumps(payload).encode()
    try:
        registry.release(SLOT, "test", force=True)
        registry.claim(SLOT, task, "qa@example.com", timedelta(hours=1))
        with api_server(sandbox.registry_dsn, unreachable, workers=1) as server:
            down = post_linear(server, payload, delivery=delivery, body=body, timeout=30)
        assert down.status_code == 503, down.text
        assert down.headers["Retry-After"].isdigit()
        assert "cannot reach" in down.json()["message"], down.text
        assert registry.get(SLOT).task == task
        with api_server(sandbox.registry_dsn, reachable, workers=1) as server:
            back = post_linear(server, payload, delivery=delivery, body=body, timeout=30)
            replayed = post_linear(server, payload, delivery=delivery, body=body, timeout=30)
        assert back.status_code == 200 and back.json()["applied"] is True, back.text
        assert back.json()["slots"][0]["outcome"].startswith("released, stopped"), back.text
        assert not registry.get(SLOT).claimed
        # Now it was applied: a further redelivery is "applied before", nothing more.
        assert replayed.status_code == 200 and replayed.json()["applied"] is False, replayed.text
        assert "applied before" in replayed.json()["message"]
    finally:
        registry.close()
        run_invoke("release", "--slot", str(SLOT), "--force", "--stop", env=sandbox.env())


def test_a_delivery_whose_stop_fails_is_not_done_until_redelivered(
    sandbox, provisioned, tmp_path
) -> None:
    """Stopping fails on the droplet (the slot's `current` is a directory someone made by
    hand, which the stop cannot unlink): the completed task's delivery is answered 503 with
    what failed, the claim kept and nothing recorded; once that is repaired, the same delivery
    releases and stops the slot."""
    task = "JA-886"
    inventory = inventory_variant(
        sandbox, tmp_path, (REPOSITORY, REPOSITORY + "auto_release_stop = true\n")
    )
    current = sandbox.hosts[0].root / f"srv/staging/staging-{SLOT}/current"
    registry = PostgresRegistry(sandbox.registry_dsn)
    payload, delivery = linear_done(task), "2d5a3c1e-0000-4000-8000-000000000886"
    body = json.dumps(payload).encode()
    try:
        run_invoke("release", "--slot", str(SLOT), "--force", "--stop", env=sandbox.env())
        current.mkdir()
        (current / "hand-made").write_text("x\n")
        registry.claim(SLOT, task, "qa@example.com", timedelta(hours=1))
        with api_server(sandbox.registry_dsn, inventory, workers=1) as server:
            failed = post_linear(server, payload, delivery=delivery, body=body, timeout=30)
            assert failed.status_code == 503, failed.text
            assert "stopping its services failed" in failed.json()["message"], failed.text
            assert registry.get(SLOT).task == task
            shutil.rmtree(current)
            repaired = post_linear(server, payload, delivery=delivery, body=body, timeout=30)
        assert repaired.status_code == 200 and repaired.json()["applied"] is True, repaired.text
        assert not registry.get(SLOT).claimed and not current.exists()
    finally:
        registry.close()
        if current.is_dir() and not current.is_symlink():
            shutil.rmtree(current)
        run_invoke("release", "--slot", str(SLOT), "--force", "--stop", env=sandbox.env())
