"""The claim rules as tables: slot states in, the decision (or the refusal's words) out."""

from __future__ import annotations

import pytest

from staging_ops.errors import Conflict
from staging_ops.slots.model import HoldsAnotherSlot, UnknownSlot
from staging_ops.slots.rules import (
    auto_pick,
    decide_claim,
    release_refusal,
    slot_held_by,
)
from tests.unit.slots.states import HOUR, NOW, registry, slot


@pytest.mark.parametrize(
    ("claimed", "picked"),
    [
        ({}, 1),
        ({1: "JA-1"}, 2),
        ({1: "JA-1", 2: "JA-2"}, 3),
        ({2: "JA-2"}, 1),  # the lowest free one, not the one after the highest claimed
        ({1: "JA-1", 3: "JA-3"}, 2),
        ({n: f"JA-{n}" for n in range(1, 9)}, 9),
        ({n: f"JA-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9)}, None),  # slot 10 is free
        ({n: f"JA-{n}" for n in range(1, 11)}, None),
        ({n: f"JA-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 9, 10)}, 1),
    ],
)
def test_auto_takes_the_lowest_free_qa_slot_and_never_slot_10(claimed, picked):
    pick = auto_pick(registry(claimed))
    assert (pick.slot_id if pick else None) == picked
    decision = decide_claim(registry(claimed), None, "JA-99")
    assert decision.slot_id == picked
    assert not decision.renews
    if picked is None:
        assert isinstance(decision.refusal, Conflict)
        assert str(decision.refusal) == (
            "no free QA slot: all 9 QA slots are claimed "
            "(`invoke status` shows by whom; `invoke reap` frees stale ones)"
        )
    else:
        assert decision.refusal is None


def test_auto_never_picks_the_staging_slot_even_when_it_is_the_only_one_free():
    only_staging = [slot(10)]
    assert auto_pick(only_staging) is None
    decision = decide_claim(only_staging, None, "JA-1")
    assert "all 0 QA slots are claimed" in str(decision.refusal)


@pytest.mark.parametrize(
    ("claimed", "task", "renewed"),
    [
        ({5: "JA-5"}, "JA-5", 5),  # its own slot back, though slot 1 is free
        ({1: "JA-1", 5: "JA-5"}, "JA-5", 5),
        ({10: "JA-10"}, "JA-10", 10),  # the staging slot too, if that is what it holds
        ({n: f"JA-{n}" for n in range(1, 11)}, "JA-7", 7),  # no free slot: still renews
    ],
)
def test_auto_for_a_task_that_holds_a_slot_renews_that_slot(claimed, task, renewed):
    decision = decide_claim(registry(claimed), None, task)
    assert (decision.slot_id, decision.renews, decision.refusal) == (renewed, True, None)


@pytest.mark.parametrize(
    ("claimed", "asked", "outcome"),
    [
        ({}, 4, ("take", None)),
        ({}, 10, ("take", None)),  # slot 10 is claimed by its number
        ({4: "JA-1"}, 4, ("renew", None)),  # the holding task claims again: renewal
        ({10: "JA-1"}, 10, ("renew", None)),
        (
            {3: "JA-1"},
            4,
            (
                "refuse",
                "task JA-1 already holds slot 3 (staging-3); release it first: "
                "invoke release --slot 3",
            ),
        ),
        (
            {10: "JA-1"},
            4,
            (
                "refuse",
                "task JA-1 already holds slot 10 (staging-10); release it first: "
                "invoke release --slot 10",
            ),
        ),
        (
            {4: "JA-2"},
            4,
            (
                "refuse",
                "slot 4 (staging-4) is held by task JA-2 (owner alice) since "
                "2025-01-08 09:00 UTC, expires 2025-01-09 10:00 UTC",
            ),
        ),
    ],
)
def test_one_slot_per_task_and_the_holder_renews(claimed, asked, outcome):
    decision = decide_claim(registry(claimed), asked, "JA-1")
    kind, message = outcome
    assert decision.slot_id == asked
    if kind == "refuse":
        assert str(decision.refusal) == message
        assert not decision.renews
    else:
        assert decision.refusal is None
        assert decision.renews == (kind == "renew")


def test_holding_another_slot_is_told_apart_from_a_taken_slot():
    """`claim --wait` waits out a taken slot, never a task that holds another one."""
    holds = decide_claim(registry({3: "JA-1", 4: "JA-2"}), 4, "JA-1").refusal
    taken = decide_claim(registry({4: "JA-2"}), 4, "JA-1").refusal
    assert isinstance(holds, HoldsAnotherSlot)
    assert isinstance(taken, Conflict) and not isinstance(taken, HoldsAnotherSlot)


def test_an_unregistered_slot_is_refused_as_unknown():
    refusal = decide_claim(registry({}), 11, "JA-1").refusal
    assert isinstance(refusal, UnknownSlot)
    assert str(refusal) == (
        "slot 11 is not in the registry (is the inventory migrated? `invoke registry.migrate`)"
    )


def test_a_task_is_held_at_most_once():
    assert slot_held_by(registry({3: "JA-1", 4: "JA-2"}), "JA-2").slot_id == 4
    assert slot_held_by(registry({3: "JA-1"}), "JA-2") is None


@pytest.mark.parametrize(
    ("expires_at", "status", "expired"),
    [
        (NOW + HOUR, "claimed", False),
        (NOW, "claimed", True),  # expired from its expiry on
        (NOW - HOUR, "claimed", True),
        (None, "claimed", False),
        (NOW - HOUR, "free", False),  # a free slot has no claim to expire
    ],
)
def test_expiry(expires_at, status, expired):
    state = slot(4, "JA-1", expires_at=expires_at, status=status)
    assert state.expired(NOW) is expired


HELD = slot(4, "JA-1", branch="feat-x", commit="abcdef1234567")
NOT_YOURS = (
    "slot 4 (staging-4) is held by task JA-1 (owner alice) since 2025-01-08 09:00 UTC, "
    "expires 2025-01-09 10:00 UTC; only its owner or task may release it (or use --force)"
)


@pytest.mark.parametrize(
    ("by", "asks", "refusal"),
    [
        ("alice", {}, None),  # the owner
        ("bob", {}, NOT_YOURS),
        ("bob", {"force": True}, None),
        ("bob", {"task": "JA-1"}, None),  # naming the holding task proves the right
        ("bob", {"task": "JA-1", "force": True}, None),
        (
            "bob",
            {"task": "JA-2"},
            "slot 4 (staging-4) is now held by task JA-1 (owner alice) since "
            "2025-01-08 09:00 UTC, expires 2025-01-09 10:00 UTC, not by JA-2",
        ),
        # Another task named is refused even with --force: the task is a precondition.
        ("alice", {"task": "JA-2", "force": True}, "not by JA-2"),
        # reap: only a claim that is still expired, and still the commit it judged.
        ("reaper", {"force": True, "expired_only": True, "expired": True}, None),
        (
            "reaper",
            {"force": True, "expired_only": True},
            "the claim on slot 4 (staging-4) is not expired (expires 2025-01-09 10:00 UTC)",
        ),
        ("reaper", {"force": True, "expect_commit": "abcdef1234567"}, None),
        (
            "reaper",
            {"force": True, "expect_commit": "0123456"},
            "slot 4 (staging-4) was deployed again (feat-x at abcdef123456) since it was judged",
        ),
    ],
)
def test_who_may_release(by, asks, refusal):
    asks = {"expired": False, **asks}
    found = release_refusal(HELD, by, **asks)
    if refusal is None:
        assert found is None
    else:
        assert isinstance(found, Conflict)
        assert refusal in str(found)


@pytest.mark.parametrize("asks", [{}, {"task": "JA-2"}, {"expired_only": True}])
def test_releasing_a_free_slot_is_never_refused(asks):
    assert release_refusal(slot(4), "bob", expired=False, **asks) is None
