"""Webhook decisions as tables: signatures, timestamps, payload -> decision, and which claims a
trigger names. Pure: no server, no registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from staging_ops.claims.auto_release import Trigger, holders
from staging_ops.slots.model import SlotState
from staging_ops.web.webhooks import github, linear
from staging_ops.web.webhooks.decision import DEPLOY, IGNORE, PING, RELEASE, hmac_hex
from tests.webhook_fixtures import deleted_branch, fixture, linear_done, merged_pr, pushed

REPO = "justapply/job-search"
SECRET = "s3cret"
BODY = b'{"a": 1}'


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("sha256=" + hmac_hex(SECRET, BODY), True),
        ("sha256=" + hmac_hex(SECRET, BODY).upper(), True),  # hex case does not matter
        (hmac_hex(SECRET, BODY), False),  # the prefix is required
        ("sha1=" + hmac_hex(SECRET, BODY), False),
        ("sha256=" + hmac_hex("other", BODY), False),
        ("sha256=" + hmac_hex(SECRET, BODY + b" "), False),  # over a different body
        ("sha256=", False),
        ("", False),
        (None, False),
        ("sha256=zz\u00e9", False),  # not even hex
    ],
)
def test_github_signature(header: str | None, ok: bool) -> None:
    assert github.verify(SECRET, BODY, header) is ok


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (hmac_hex(SECRET, BODY), True),
        ("sha256=" + hmac_hex(SECRET, BODY), False),
        (hmac_hex(SECRET, b"{}"), False),
        ("", False),
        (None, False),
    ],
)
def test_linear_signature(header: str | None, ok: bool) -> None:
    assert linear.verify(SECRET, BODY, header) is ok


def _pr_from_fork() -> dict:
    payload = merged_pr("feat-x")
    payload["pull_request"]["head"]["repo"]["full_name"] = "mallory/job-search"
    return payload


def _pr_fork_deleted() -> dict:
    payload = merged_pr("feat-x")
    payload["pull_request"]["head"]["repo"] = None
    return payload


def _tag_deleted() -> dict:
    payload = deleted_branch("v1.0")
    payload["ref_type"] = "tag"
    return payload


def _other_repo() -> dict:
    payload = merged_pr("feat-x")
    payload["repository"]["full_name"] = "someone/else"
    return payload


@pytest.mark.parametrize(
    ("event", "payload", "repository", "action", "branch"),
    [
        ("pull_request", merged_pr("feat-x"), REPO, RELEASE, "feat-x"),
        ("pull_request", merged_pr("feat-x"), REPO.upper(), RELEASE, "feat-x"),
        ("pull_request", merged_pr("feat-x", merged=False), REPO, IGNORE, None),
        ("pull_request", {**merged_pr("feat-x"), "action": "opened"}, REPO, IGNORE, None),
        ("pull_request", _pr_from_fork(), REPO, IGNORE, None),
        ("pull_request", _pr_fork_deleted(), REPO, IGNORE, None),
        ("pull_request", merged_pr("-rf"), REPO, IGNORE, None),
        ("pull_request", merged_pr("feat-x"), None, IGNORE, None),  # no github_repository
        ("pull_request", _other_repo(), REPO, IGNORE, None),
        ("delete", deleted_branch("feat-x"), REPO, RELEASE, "feat-x"),
        ("delete", _tag_deleted(), REPO, IGNORE, None),
        ("ping", fixture("github_ping"), REPO, PING, None),
        ("push", {"ref": "refs/heads/main"}, REPO, IGNORE, None),
        ("push", pushed("feat-x", "a" * 40), REPO, DEPLOY, "feat-x"),
        ("push", pushed("feat-x", "a" * 40, forced=True), REPO, DEPLOY, "feat-x"),
        ("push", pushed("feat-x", "", deleted=True), REPO, DEPLOY, "feat-x"),
        ("push", pushed("feat-x", "a" * 40, repository="someone/job-search"), REPO, IGNORE, None),
        ("push", pushed("-rf", "a" * 40), REPO, IGNORE, None),
        ("push", pushed("feat-x", "not-a-sha"), REPO, IGNORE, None),
        ("push", {**pushed("feat-x", "a" * 40), "ref": "refs/tags/v1"}, REPO, IGNORE, None),
        (None, {}, REPO, IGNORE, None),
        ("pull_request", {"repository": "justapply/job-search"}, REPO, IGNORE, None),
        (
            "pull_request",
            {"repository": {"full_name": REPO}, "pull_request": []},
            REPO,
            IGNORE,
            None,
        ),
    ],
)
def test_github_decisions(
    event: str | None, payload: dict, repository: str | None, action: str, branch: str | None
) -> None:
    decision = github.decide(event, payload, repository)
    assert (decision.action, decision.branch) == (action, branch), decision.message
    if action == RELEASE:
        assert decision.reason and decision.actor in ("bob", "alice")


def test_a_merged_pr_is_recorded_with_its_number_and_link() -> None:
    decision = github.decide("pull_request", merged_pr("ja-123-fix-x", number=7), REPO)
    assert decision.reason == (
        "PR #7 merged (ja-123-fix-x) https://github.com/justapply/job-search/pull/42"
    )


NOW = 1_736_330_400_000


@pytest.mark.parametrize(
    ("stamp", "fresh"),
    [
        (NOW, True),
        (NOW - 60_000, True),
        (NOW + 59_000, True),
        (NOW - 60_001, False),
        (NOW + 61_000, False),
        (None, False),
        ("1736330400000", False),
        (True, False),
    ],
)
def test_linear_timestamp(stamp: object, fresh: bool) -> None:
    payload = {"webhookTimestamp": stamp} if stamp is not None else {}
    assert (linear.timestamp_problem(payload, NOW) is None) is fresh


def _unchanged_state() -> dict:
    payload = linear_done("JA-5")
    payload["updatedFrom"] = {"title": "old title"}
    return payload


@pytest.mark.parametrize(
    ("payload", "action", "task"),
    [
        (linear_done("JA-123"), RELEASE, "JA-123"),
        (linear_done("ja-9", "canceled"), RELEASE, "JA-9"),
        (linear_done("JA-1", "started"), IGNORE, None),
        (linear_done("JA-1", "unstarted"), IGNORE, None),
        ({**linear_done("JA-1"), "type": "Comment"}, IGNORE, None),
        ({**linear_done("JA-1"), "action": "create"}, RELEASE, "JA-1"),
        ({**linear_done("JA-1"), "action": "remove"}, RELEASE, "JA-1"),
        ({**linear_done("JA-1"), "action": "archive"}, IGNORE, None),
        (_unchanged_state(), IGNORE, None),
        (linear_done("not a key"), IGNORE, None),
        ({"type": "Issue", "action": "update", "data": "x"}, IGNORE, None),
        ({}, IGNORE, None),
    ],
)
def test_linear_decisions(payload: dict, action: str, task: str | None) -> None:
    decision = linear.decide(payload)
    assert (decision.action, decision.task) == (action, task), decision.message


T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _slot(n: int, task: str | None, branch: str | None, deployed: bool = True) -> SlotState:
    return SlotState(
        slot_id=n,
        identifier=f"staging-{n}",
        subdomain=f"staging-{n}.justapply.net",
        role="qa",
        status="claimed" if task else "free",
        task=task,
        owner="alice" if task else None,
        branch=branch,
        commit="abcdef1",
        claimed_at=T0 if task else None,
        deployed_at=T0 + timedelta(minutes=1) if deployed else T0 - timedelta(days=1),
    )


STATES = [
    _slot(1, "JA-1", "feat-x"),
    _slot(2, "JA-2", "feat-y", deployed=False),  # feat-y is its predecessor's deploy
    _slot(3, None, "feat-z"),  # free
    _slot(4, "JA-123", "other"),
]


@pytest.mark.parametrize(
    ("trigger", "slots"),
    [
        (Trigger("github", "", branch="feat-x"), [1]),
        (Trigger("github", "", branch="feat-y"), []),
        (Trigger("github", "", branch="feat-z"), []),
        (Trigger("github", "", branch="ja-123-fix-x"), [4]),  # the Linear key in its name
        (Trigger("github", "", branch="nothing"), []),
        (Trigger("linear", "", task="JA-2"), [2]),
        (Trigger("linear", "", task="JA-404"), []),
    ],
)
def test_which_claims_a_trigger_names(trigger: Trigger, slots: list[int]) -> None:
    assert [s.slot_id for s in holders(STATES, trigger)] == slots


def test_a_push_names_its_commit_and_a_deleted_branch_none() -> None:
    assert github.decide("push", pushed("feat-x", "b" * 40), REPO).commit == "b" * 40
    deleted = github.decide("push", pushed("feat-x", "", deleted=True), REPO)
    assert deleted.commit is None and "deleted" in deleted.message
