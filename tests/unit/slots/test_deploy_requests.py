"""The deploy queue's pure decisions: which request runs, which are superseded, when a
worker counts as gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from staging_ops.slots.deploy_requests import (
    QUEUED,
    RUNNING,
    ClaimPlan,
    DeployRequest,
    already_serving,
    lease_expired,
    plan_claim,
    superseded,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def req(id: int, slot: int, state: str = QUEUED, **extra) -> DeployRequest:
    return DeployRequest(id, slot, "deploy", "alice", "api", state=state, branch="main", **extra)


def running(id: int, slot: int, lease_in: float, attempts: int = 1) -> DeployRequest:
    return req(
        id,
        slot,
        RUNNING,
        worker="w1",
        attempts=attempts,
        lease_until=NOW + timedelta(seconds=lease_in),
    )


def test_nothing_open_takes_nothing() -> None:
    assert plan_claim([], NOW) == ClaimPlan()


def test_the_oldest_slot_waiting_goes_first() -> None:
    assert plan_claim([req(3, 4), req(5, 2)], NOW).take == 3


def test_a_newer_request_for_a_slot_supersedes_the_queued_older_ones() -> None:
    plan = plan_claim([req(1, 4), req(2, 4), req(3, 4)], NOW)
    assert plan.take == 3
    assert plan.supersede == ((1, 3), (2, 3))


def test_a_slot_with_a_running_request_waits() -> None:
    plan = plan_claim([running(1, 4, lease_in=10), req(2, 4), req(3, 5)], NOW)
    assert plan.take == 3  # slot 5's, not slot 4's: 4 is busy
    assert plan.supersede == ()


def test_a_running_request_is_never_superseded() -> None:
    assert superseded([running(1, 4, lease_in=10), req(2, 4)]) == []


def test_an_expired_lease_is_taken_again() -> None:
    plan = plan_claim([running(1, 4, lease_in=-1)], NOW)
    assert plan.requeue == (1,) and plan.fail == () and plan.take == 1


def test_an_expired_lease_after_the_last_attempt_fails() -> None:
    plan = plan_claim([running(1, 4, lease_in=-1, attempts=3), req(2, 5)], NOW)
    assert plan.fail == (1,) and plan.requeue == () and plan.take == 2


def test_a_newer_request_supersedes_one_whose_worker_died() -> None:
    plan = plan_claim([running(1, 4, lease_in=-1), req(2, 4)], NOW)
    assert plan.requeue == (1,)
    assert plan.supersede == ((1, 2),)
    assert plan.take == 2


def test_a_live_lease_is_not_expired() -> None:
    assert not lease_expired(running(1, 4, lease_in=0.5), NOW)
    assert lease_expired(running(1, 4, lease_in=0), NOW)
    assert not lease_expired(req(1, 4), NOW)


def test_a_push_of_what_already_serves_has_nothing_to_do() -> None:
    sha = "a" * 40
    push = DeployRequest(1, 4, "deploy", "bob", "push", branch="x", commit=sha)
    assert already_serving(push, sha)
    assert not already_serving(push, "b" * 40)
    api = DeployRequest(1, 4, "deploy", "bob", "api", branch="x", commit=sha)
    assert not already_serving(api, sha)  # an operator asked for a deploy: it runs


def test_a_request_waits_for_its_not_before() -> None:
    later = req(1, 4, not_before=NOW + timedelta(seconds=1))
    assert plan_claim([later], NOW).take is None
    assert plan_claim([later], NOW + timedelta(seconds=1)).take == 1
    # a newer push supersedes it while it waits
    newer = req(2, 4, not_before=NOW + timedelta(seconds=2))
    plan = plan_claim([later, newer], NOW + timedelta(seconds=1))
    assert plan.supersede == ((1, 2),) and plan.take is None
