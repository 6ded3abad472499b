"""GitHub and Linear told of deploys, rollbacks and releases on the real sandbox, through
local stand-ins that validate every request against the services' published contracts
(devtools/standins, devtools/contracts) and answer as the services do."""

from __future__ import annotations

import json
import time

import pytest

from devtools.sample_repo import resolve
from devtools.standins import GitHubStandIn, LinearStandIn
from staging_ops.inventory import load_inventory
from staging_ops.render import public_url
from tests.conftest import run_invoke
from tests.sandbox.slots import slots_for

GITHUB_TOKEN = "ghp_standin_token_0123456789"
LINEAR_KEY = "lin_api_standin_0123456789"
REPOSITORY = "justapply/job-search"  # the sandbox inventory's github_repository


@pytest.fixture(scope="module")
def github():
    stand_in = GitHubStandIn(GITHUB_TOKEN)
    stand_in.start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def linear():
    stand_in = LinearStandIn(LINEAR_KEY)
    stand_in.start()
    yield stand_in
    stand_in.stop()


# The slots this module claims for tasks of its own: for the PR and task test, the GitHub
# outage test and the API's release. The conftest's module_slots fixture frees them first, with
# the integrations off, so only this module's events reach the stand-ins.
PR_SLOT, OUTAGE_SLOT, API_SLOT = slots_for(__name__)


@pytest.fixture(scope="module")
def box(sandbox, provisioned):
    return sandbox


def told_env(box, github, linear) -> dict[str, str]:
    return {
        **box.env(),
        "STAGING_DASHBOARD_URL": "https://justapply.net/staging",
        "STAGING_GITHUB_TOKEN": GITHUB_TOKEN,
        "STAGING_GITHUB_API_URL": github.url,
        "STAGING_LINEAR_API_KEY": LINEAR_KEY,
        "STAGING_LINEAR_API_URL": linear.endpoint,
    }


def invoke(env, *args):
    return run_invoke(*args, env=env)


def slot_url(box, slot: int) -> str:
    inventory = load_inventory(box.inventory_path)
    return public_url(inventory.hosts[inventory.slots[slot].host], inventory.slots[slot])


def deployment_of(github, slot: int, commit: str) -> int:
    found = [
        ident
        for ident, d in github.deployments.items()
        if d["sha"] == commit and d["environment"] == f"staging-{slot}"
    ]
    assert len(found) == 1, f"{len(found)} deployments of {commit[:12]} on staging-{slot}"
    return found[0]


def wait_for(condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return condition()


def test_deploy_rollback_release_on_the_pr_and_the_task(box, github, linear):
    env = told_env(box, github, linear)
    slot, task = PR_SLOT, "JA-55"
    url = slot_url(box, slot)
    page = f"{env['STAGING_DASHBOARD_URL']}#staging-{slot}"
    main, feat = resolve(box.repo_path, "main"), resolve(box.repo_path, "feat-x")
    broken = resolve(box.repo_path, "broken-migration")

    for branch in ("main", "feat-x"):
        done = invoke(env, "deploy", "--slot", str(slot), "--branch", branch, "--task", task)
        assert done.returncode == 0, done.stdout + done.stderr
    # Each deploy: one Deployment for its commit, in_progress then success, with the slot's
    # URL and the dashboard's page; told by the time the CLI exits.
    for commit in (main, feat):
        ident = deployment_of(github, slot, commit)
        assert github.states(ident) == ["in_progress", "success"]
        deployment = github.deployments[ident]
        assert deployment["transient_environment"] is True
        assert deployment["repository_url"].endswith(f"/repos/{REPOSITORY}")
        last = github.statuses[ident][-1]
        assert (last["environment_url"], last["log_url"]) == (url, page)
    # Linear: one attachment per URL and task, its title following the deploys.
    issue = linear.issue(task)
    assert list(issue.attachments) == [url]
    assert issue.attachments[url]["title"] == f"staging-{slot}: feat-x@{feat[:12]}"
    assert issue.comments == []

    failed = invoke(
        env, "deploy", "--slot", str(slot), "--branch", "broken-migration", "--task", task
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert github.states(deployment_of(github, slot, broken)) == ["in_progress", "failure"]
    [comment] = issue.comments
    assert "failed at `migrate`" in comment["body"] and broken[:12] in comment["body"]

    back = invoke(env, "rollback", "--slot", str(slot), "--task", task)
    assert back.returncode == 0, back.stdout + back.stderr
    # The rollback went to main's release: main's Deployment gets the new statuses; no
    # second Deployment of the same commit on the slot.
    assert github.states(deployment_of(github, slot, main)) == [
        "in_progress",
        "success",
        "in_progress",
        "success",
    ]
    assert len(github.posts("deployments")) == 3

    freed = invoke(env, "release", "--slot", str(slot), "--task", task)
    assert freed.returncode == 0, freed.stdout + freed.stderr
    for commit in (main, feat, broken):
        assert github.states(deployment_of(github, slot, commit))[-1] == "inactive"
    assert issue.attachments[url]["title"] == f"staging-{slot}: released"
    assert "was released" in issue.comments[-1]["body"]
    assert list(issue.attachments) == [url]

    github.assert_valid()
    linear.assert_valid()
    status = invoke(env, "status", "--no-health", "--json")
    assert status.returncode == 0, status.stderr
    row = next(r for r in json.loads(status.stdout) if r["slot"] == slot)
    assert row["integrations"] == {
        "github": {"pending": 0, "failed": 0},
        "linear": {"pending": 0, "failed": 0},
    }
    assert GITHUB_TOKEN not in status.stdout + status.stderr


def test_github_down_never_fails_a_deploy_and_is_told_when_back(box, github, linear, monkeypatch):
    env = told_env(box, github, linear)
    slot, task = OUTAGE_SLOT, "JA-66"
    commit = resolve(box.repo_path, "main")
    github.stop()
    try:
        done = invoke(env, "deploy", "--slot", str(slot), "--branch", "main", "--task", task)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "warning" not in done.stderr.lower(), done.stderr
        # Linear was up: told at once, GitHub's events wait in the outbox.
        assert list(linear.issue(task).attachments) == [slot_url(box, slot)]
        status = invoke(env, "status", "--no-health", "--json")
        row = next(r for r in json.loads(status.stdout) if r["slot"] == slot)
        assert row["integrations"]["github"] == {"pending": 2, "failed": 0}
        text = invoke(env, "status", "--no-health")
        assert "GitHub on (2 undelivered, 0 failed)" in text.stdout, text.stdout
    finally:
        github.start()  # the same port: GitHub is back

    # The Staging API server's delivery loop (create_app starts it) delivers it, in order.
    from staging_ops.integrations import outbox
    from staging_ops.web import create_app

    for name in ("STAGING_GITHUB_TOKEN", "STAGING_GITHUB_API_URL", "STAGING_LINEAR_API_KEY"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv("STAGING_LINEAR_API_URL", env["STAGING_LINEAR_API_URL"])
    try:
        create_app(dsn=env["STAGING_REGISTRY_DSN"], jwt_secret="x" * 32, pool_size=1)
        ident = wait_for(
            lambda: [
                i
                for i, d in github.deployments.items()
                if d["sha"] == commit and d["environment"] == f"staging-{slot}"
            ]
        )
        assert ident, "the loop never delivered the Deployment"
        states = wait_for(lambda: github.states(ident[0]) == ["in_progress", "success"])
        assert states, github.states(ident[0])
    finally:
        outbox.stop_loop()
    status = invoke(env, "status", "--no-health", "--json")
    row = next(r for r in json.loads(status.stdout) if r["slot"] == slot)
    assert row["integrations"]["github"] == {"pending": 0, "failed": 0}
    github.assert_valid()
    linear.assert_valid()
    released = invoke(env, "release", "--slot", str(slot), "--task", task)
    assert released.returncode == 0, released.stderr


def test_without_tokens_the_integrations_are_off_and_say_so(box):
    status = invoke(box.env(), "status", "--no-health")
    assert status.returncode == 0, status.stderr
    assert status.stdout.rstrip().splitlines()[-1] == (
        "integrations: GitHub off (STAGING_GITHUB_TOKEN is not set); "
        "Linear off (STAGING_LINEAR_API_KEY is not set)"
    )


def test_deliverers_at_once_send_each_event_once(box, github, linear):
    """The CLI's thread and every API server worker may deliver at once: each row is leased
    by one of them, so one Deployment and one status per event."""
    from concurrent.futures import ThreadPoolExecutor

    from staging_ops.integrations import config, outbox
    from staging_ops.integrations.events import STARTED, SUCCEEDED, Event
    from staging_ops.registry import outbox as rows

    env = told_env(box, github, linear)
    dsn = env["STAGING_REGISTRY_DSN"]
    commit = "7" * 40
    for kind in (STARTED, SUCCEEDED):
        event = Event(kind, 7, "staging-7", "https://s7", commit, "main", "JA-77", REPOSITORY)
        rows.add(dsn, [("github", 7, kind, event.to_json())])
    settings = config.from_env(env)
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):  # the second event is due once the first is delivered
            list(pool.map(lambda _: outbox.deliver_due(dsn, settings), range(4)))
    [ident] = [i for i, d in github.deployments.items() if d["sha"] == commit]
    assert github.states(ident) == ["in_progress", "success"]
    github.assert_valid()


def test_a_release_through_the_api_is_told(box, github, linear, monkeypatch):
    """The dashboard's and the API's releases: the server emits the event itself."""
    import requests

    from staging_ops.integrations import outbox
    from staging_ops.registry import PostgresRegistry
    from staging_ops.web import create_app
    from staging_ops.web.auth import mint_token
    from staging_ops.web.server import BackgroundServer

    env = told_env(box, github, linear)
    for name in told_env(box, github, linear).keys() - box.env().keys():
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv("STAGING_INVENTORY", str(box.inventory_path))
    claimed = invoke(env, "claim", "--slot", str(API_SLOT), "--task", "JA-88")
    assert claimed.returncode == 0, claimed.stderr
    secret = "s" * 40
    registry = PostgresRegistry(env["STAGING_REGISTRY_DSN"], max_connections=2)
    try:
        with BackgroundServer(create_app(registry, jwt_secret=secret), threads=2) as server:
            answer = requests.post(
                f"{server.url}/api/staging/slots/{API_SLOT}/release",
                headers={"Authorization": f"Bearer {mint_token(secret, 'qa@example.com')}"},
                json={"task": "JA-88"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            assert outbox.settle(5.0)
    finally:
        outbox.stop_loop()
        registry.close()
    issue = linear.issue("JA-88")
    url = slot_url(box, API_SLOT)
    assert issue.attachments[url]["title"] == f"staging-{API_SLOT}: released"
    assert "released by qa@example.com" in issue.comments[-1]["body"]
    linear.assert_valid()
