"""The webhooks against the real server (`invoke api.serve`, two granian workers) and the real
registry: signed payloads shaped as GitHub's and Linear's documented examples
(tests/fixtures/webhooks/), and everything a sender could get wrong or forge."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from staging_ops.inventory import load_inventory
from staging_ops.registry import PostgresRegistry, migrate
from staging_ops.web.webhooks.decision import hmac_hex
from tests.conftest import execute, inventory_variant, run_invoke
from tests.sandbox.api_server import Server
from tests.sandbox.webhook_server import (
    GITHUB_SECRET,
    LINEAR,
    LINEAR_SECRET,
    WEBHOOK_ENV,
    api_server,
    post_linear,
)
from tests.webhook_fixtures import (
    deleted_branch,
    fixture,
    github_headers,
    linear_done,
    linear_headers,
    merged_pr,
)

GITHUB = "/api/staging/webhooks/github"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def server(registry_dsn: str, test_inventory_path: Path) -> Iterator[Server]:
    migrate(registry_dsn, load_inventory(test_inventory_path))
    with api_server(registry_dsn, test_inventory_path) as running:
        yield running


@pytest.fixture
def registry(registry_dsn: str, server: Server) -> Iterator[PostgresRegistry]:
    reg = PostgresRegistry(registry_dsn)
    yield reg
    reg.close()


def deployed(registry: PostgresRegistry, slot: int, task: str, branch: str | None) -> None:
    registry.claim(slot, task, "alice@example.com", timedelta(hours=1))
    if branch:
        registry.record_deploy(slot, branch, COMMIT, "alice@example.com", task=task)


def post_github(
    server: Server, payload: object, event: str = "pull_request", delivery: str | None = None
) -> requests.Response:
    body = json.dumps(payload).encode()
    headers = github_headers(GITHUB_SECRET, body, event, delivery)
    return requests.post(server.url + GITHUB, data=body, headers=headers, timeout=10)


def events(registry: PostgresRegistry, slot: int) -> list[tuple[str, str, str | None]]:
    return [(e.action, e.via, e.detail) for e in registry.history(slot, 50)]


def releases(registry: PostgresRegistry, slot: int) -> list[tuple[str, str, str | None]]:
    return [e for e in events(registry, slot) if e[0] == "release"]


# ---- GitHub ------------------------------------------------------------------------------


def test_a_merged_pr_releases_the_slot_that_deployed_its_branch(
    server: Server, registry: PostgresRegistry
) -> None:
    deployed(registry, 3, "JA-31", "feat-x")
    answer = post_github(server, merged_pr("feat-x", number=12))
    assert answer.status_code == 200, answer.text
    assert answer.json()["applied"] is True and answer.json()["slots"][0]["slot"] == 3
    assert registry.get(3).status == "free"
    _, via, detail = releases(registry, 3)[0]
    assert via == "github" and "PR #12 merged (feat-x)" in (detail or "")
    assert "https://github.com/justapply/job-search/pull/" in (detail or "")
    assert registry.history(3, 1)[0].actor == "bob"  # who merged it, on GitHub


def test_a_pr_closed_without_merging_releases_nothing(
    server: Server, registry: PostgresRegistry
) -> None:
    deployed(registry, 3, "JA-31", "feat-x")
    answer = post_github(server, merged_pr("feat-x", merged=False))
    assert answer.status_code == 202 and answer.json()["applied"] is False
    assert "closed without being merged" in answer.json()["message"]
    assert registry.get(3).task == "JA-31"


def test_a_pr_merged_from_a_branch_named_after_the_task_releases_its_slot(
    server: Server, registry: PostgresRegistry
) -> None:
    deployed(registry, 5, "JA-123", None)  # claimed, never deployed: judged by the key
    answer = post_github(server, merged_pr("ja-123-fix-x"))
    assert answer.status_code == 200, answer.text
    assert registry.get(5).status == "free" and releases(registry, 5)[0][1] == "github"


def test_a_deleted_branch_releases_its_slot(server: Server, registry: PostgresRegistry) -> None:
    deployed(registry, 2, "JA-22", "feat-x")
    answer = post_github(server, deleted_branch("feat-x"), event="delete")
    assert answer.status_code == 200, answer.text
    assert registry.get(2).status == "free"
    assert "branch feat-x deleted on GitHub" in (releases(registry, 2)[0][2] or "")


def test_ping_unknown_events_other_repositories_and_free_branches_do_nothing(
    server: Server, registry: PostgresRegistry
) -> None:
    deployed(registry, 4, "JA-44", "feat-x")
    ping = post_github(server, fixture("github_ping"), event="ping")
    assert (ping.status_code, ping.json()["message"]) == (200, "pong")
    push = post_github(server, {"ref": "refs/heads/feat-x"}, event="push")
    assert push.status_code == 202 and push.json()["applied"] is False
    other = merged_pr("feat-x")
    other["repository"]["full_name"] = "someone/job-search"
    assert post_github(server, other).status_code == 202
    nobody = post_github(server, merged_pr("feat-nobody-holds"))
    assert nobody.status_code == 202 and "no slot is held by it" in nobody.json()["message"]
    assert registry.get(4).task == "JA-44"


def test_a_redelivery_is_answered_but_not_applied_twice(
    server: Server, registry: PostgresRegistry
) -> None:
    deployed(registry, 3, "JA-31", "feat-x")
    delivery = str(uuid.uuid4())
    first = post_github(server, merged_pr("feat-x"), delivery=delivery)
    assert first.json()["applied"] is True
    deployed(registry, 3, "JA-31", "feat-x")  # claimed and deployed again since
    again = post_github(server, merged_pr("feat-x"), delivery=delivery)
    assert again.status_code == 200 and again.json()["applied"] is False
    assert "applied before" in again.json()["message"]
    assert registry.get(3).task == "JA-31" and len(releases(registry, 3)) == 1


def test_two_identical_deliveries_at_once_apply_once(
    server: Server, registry: PostgresRegistry
) -> None:
    for round_ in range(3):
        deployed(registry, 6, "JA-66", "feat-x")
        body = json.dumps(merged_pr("feat-x", number=100 + round_)).encode()
        headers = github_headers(GITHUB_SECRET, body, "pull_request")
        answers: list[requests.Response] = []
        start = threading.Barrier(4)

        def send(
            body: bytes = body,
            headers: dict = headers,
            start: threading.Barrier = start,
            answers: list = answers,
        ) -> None:
            start.wait()
            answers.append(
                requests.post(server.url + GITHUB, data=body, headers=headers, timeout=10)
            )

        threads = [threading.Thread(target=send) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(a.status_code for a in answers) == [200] * 4
        assert [a.json()["applied"] for a in answers].count(True) == 1
    assert len(releases(registry, 6)) == 3  # one per round, not one per request


def test_forged_and_mismatched_signatures_are_refused_and_change_nothing(
    server: Server, registry: PostgresRegistry
) -> None:
    deployed(registry, 3, "JA-31", "feat-x")
    body = json.dumps(merged_pr("feat-x")).encode()
    forged = github_headers("not-the-secret", body, "pull_request")
    other_body = github_headers(GITHUB_SECRET, body + b"\n", "pull_request")
    unsigned = {k: v for k, v in forged.items() if k != "X-Hub-Signature-256"}
    for headers in (forged, other_body, unsigned, {**forged, "X-Hub-Signature-256": "sha256="}):
        refused = requests.post(server.url + GITHUB, data=body, headers=headers, timeout=10)
        assert refused.status_code == 401, refused.text
        assert refused.json()["applied"] is False
    assert registry.get(3).task == "JA-31"
    assert execute(registry.dsn, "SELECT count(*) FROM marts.staging_webhook_deliveries") == [(0,)]


def test_a_body_over_one_mib_is_refused_before_it_is_read(server: Server) -> None:
    big = b"{" + b" " * (1024 * 1024) + b"}"
    headers = github_headers(GITHUB_SECRET, big, "pull_request")
    answer = requests.post(server.url + GITHUB, data=big, headers=headers, timeout=10)
    assert answer.status_code == 413
    # Chunked, with no Content-Length: refused after reading one byte past the limit.
    chunks = iter([big[:600_000], big[600_000:]])
    signed = linear_headers(LINEAR_SECRET, big)
    chunked = requests.post(server.url + LINEAR, data=chunks, headers=signed, timeout=10)
    assert chunked.status_code == 413


# ---- Linear ------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["completed", "canceled"])
def test_a_done_task_releases_its_slot(
    server: Server, registry: PostgresRegistry, state: str
) -> None:
    deployed(registry, 7, "JA-123", "feat-x")
    answer = post_linear(server, linear_done("JA-123", state))
    assert answer.status_code == 200, answer.text
    assert registry.get(7).status == "free"
    _, via, detail = releases(registry, 7)[0]
    name = "Done" if state == "completed" else "Canceled"
    assert via == "linear" and f"JA-123 moved to {name} in Linear" in (detail or "")
    assert "https://linear.app/justapply/issue/JA-123" in (detail or "")


def test_a_task_still_in_progress_releases_nothing(
    server: Server, registry: PostgresRegistry
) -> None:
    deployed(registry, 7, "JA-123", "feat-x")
    answer = post_linear(server, linear_done("JA-123", "started"))
    assert answer.status_code == 202 and registry.get(7).task == "JA-123"


def test_a_stale_or_replayed_linear_delivery_is_refused(
    server: Server, registry: PostgresRegistry
) -> None:
    deployed(registry, 8, "JA-8", None)
    stale = post_linear(server, linear_done("JA-8", at_ms=int(time.time() * 1000) - 61_000))
    assert stale.status_code == 401 and "minute" in stale.json()["message"]
    assert registry.get(8).task == "JA-8"
    body = json.dumps(linear_done("JA-8")).encode()
    assert post_linear(server, None, body=body).json()["applied"] is True
    deployed(registry, 8, "JA-8", None)
    # The same signed body again (within its minute), under a fresh delivery header.
    replay = post_linear(server, None, body=body)
    assert replay.status_code == 200 and replay.json()["applied"] is False
    assert registry.get(8).task == "JA-8" and len(releases(registry, 8)) == 1
    forged = requests.post(
        server.url + LINEAR,
        data=body,
        headers={"Linear-Signature": hmac_hex("wrong", body)},
        timeout=10,
    )
    assert forged.status_code == 401


# ---- whatever a client sends -------------------------------------------------------------


def _fuzz_bodies() -> list[bytes]:
    rng = random.Random(14)
    shapes: list[object] = [
        None,
        1,
        "x",
        [],
        [1, 2],
        {},
        {"repository": None},
        {"repository": {"full_name": 5}},
        {"repository": {"full_name": "justapply/job-search"}, "pull_request": "x"},
        {
            "repository": {"full_name": "justapply/job-search"},
            "action": "closed",
            "pull_request": {"merged": "true", "head": {"ref": ["x"], "repo": 3}},
        },
        {
            "type": "Issue",
            "action": "update",
            "data": {"identifier": 5, "state": []},
            "webhookTimestamp": int(time.time() * 1000),
        },
        {
            "type": "Issue",
            "action": "update",
            "data": {"identifier": "JA-1", "state": {"type": "completed"}},
            "updatedFrom": [],
            "webhookTimestamp": 1e308,
        },
        {"webhookTimestamp": "now"},
        {"webhookTimestamp": 10**400},
    ]
    bodies = [json.dumps(shape).encode() for shape in shapes if shape != 10**400]
    bodies += [
        b"",
        b"{",
        b"\xff\xfe",
        b"[" * 100_000,
        b'{"a": ' + b"9" * 5000 + b"}",
        b'{"webhookTimestamp": 1' + b"0" * 400 + b"}",
    ]
    bodies += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(20)]
    return bodies


def test_no_body_a_client_sends_gets_a_5xx(server: Server) -> None:
    events = ["pull_request", "delete", "ping", "push", "", "x" * 300]
    for n, body in enumerate(_fuzz_bodies()):
        github = github_headers(GITHUB_SECRET, body, events[n % len(events)])
        for path, headers in ((GITHUB, github), (LINEAR, linear_headers(LINEAR_SECRET, body))):
            answer = requests.post(server.url + path, data=body, headers=headers, timeout=10)
            assert answer.status_code < 500, (path, body[:80], answer.text)
            assert "applied" in answer.json()
            bad = requests.post(server.url + path, data=body, timeout=10)
            assert bad.status_code == 401
    wrong_method = requests.get(server.url + GITHUB, timeout=10)
    assert wrong_method.status_code == 405


def test_without_secrets_the_endpoints_answer_404(
    registry_dsn: str, test_inventory_path: Path
) -> None:
    migrate(registry_dsn, load_inventory(test_inventory_path))
    unset = {name: "" for name in WEBHOOK_ENV}
    with api_server(registry_dsn, test_inventory_path, unset, workers=1) as bare:
        body = json.dumps(merged_pr("feat-x")).encode()
        for path, headers in (
            (GITHUB, github_headers(GITHUB_SECRET, body, "pull_request")),
            (LINEAR, linear_headers(LINEAR_SECRET, body)),
        ):
            assert (
                requests.post(bare.url + path, data=body, headers=headers, timeout=10).status_code
                == 404
            )


def test_without_github_repository_github_events_release_nothing(
    registry_dsn: str, sandbox, tmp_path: Path
) -> None:
    inventory = inventory_variant(
        sandbox, tmp_path, ('github_repository = "justapply/job-search"\n', "")
    )
    migrate(registry_dsn, load_inventory(inventory))
    with api_server(registry_dsn, inventory, workers=1) as running:
        reg = PostgresRegistry(registry_dsn)
        try:
            deployed(reg, 3, "JA-31", "feat-x")
            answer = post_github(running, merged_pr("feat-x"))
            assert answer.status_code == 202 and "github_repository" in answer.json()["message"]
            assert reg.get(3).task == "JA-31"
        finally:
            reg.close()


# ---- invoke webhooks.test ----------------------------------------------------------------


def test_invoke_webhooks_test_sends_signed_events(
    server: Server, registry: PostgresRegistry, test_inventory_path: Path
) -> None:
    deployed(registry, 3, "JA-31", "feat-x")
    deployed(registry, 4, "JA-41", None)
    env = {**WEBHOOK_ENV, "STAGING_INVENTORY": str(test_inventory_path)}
    github = run_invoke(
        "webhooks.test", "--github", "--url", server.url, "--branch", "feat-x", env=env
    )
    assert github.returncode == 0, github.stdout + github.stderr
    assert github.stdout.startswith("200:") and registry.get(3).status == "free"
    ping = run_invoke("webhooks.test", "--github", "--url", server.url, "--event", "ping", env=env)
    assert ping.returncode == 0 and "pong" in ping.stdout
    linear = run_invoke(
        "webhooks.test",
        "--linear",
        "--url",
        server.url,
        "--task",
        "ja-41",
        "--state",
        "canceled",
        env=env,
    )
    assert linear.returncode == 0, linear.stdout + linear.stderr
    assert registry.get(4).status == "free" and releases(registry, 4)[0][1] == "linear"
    wrong = run_invoke(
        "webhooks.test",
        "--linear",
        "--url",
        server.url,
        "--task",
        "JA-41",
        env={**env, "STAGING_LINEAR_WEBHOOK_SECRET": "not-the-servers"},
    )
    assert wrong.returncode == 1 and wrong.stdout.startswith("401:")
    for secret in WEBHOOK_ENV.values():
        assert secret not in github.stdout + github.stderr + linear.stdout + linear.stderr
