"""What reap frees, as tables: slot states, the clock and what git said in; items out."""

from __future__ import annotations

import pytest

from staging_ops.claims import branches as branches_module
from staging_ops.claims.branches import BranchFacts
from staging_ops.claims.reap import ReapItem, find_reapable, judged_by_branch, plan_reap
from staging_ops.errors import StagingError
from tests.unit.slots.states import HOUR, NOW, slot

GIT = BranchFacts(
    heads={"main": "m0", "feature/merged": "a1", "feature/open": "b2", "feature/fresh": "c3"},
    merged=frozenset({"feature/merged"}),
)


def deployed(slot_id: int, branch: str, **fields: object):
    """A claim that deployed `branch` after it was claimed."""
    return slot(
        slot_id, f"JA-{slot_id}", branch=branch, commit="abcdef1", deployed_at=NOW, **fields
    )


def reasons(items: list[ReapItem]) -> dict[int, str]:
    return {item.slot.slot_id: item.reason for item in items}


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (deployed(1, "feature/merged"), "branch feature/merged is merged into main"),
        (deployed(2, "feature/open"), None),
        (deployed(3, "feature/gone"), "branch feature/gone was deleted"),
        (slot(4, "JA-4", expires_at=NOW - 2 * HOUR), "expired 2h ago"),
        (slot(4, "JA-4", expires_at=NOW), "expired 0s ago"),
        (deployed(5, "main"), None),  # main is never judged
        (deployed(6, "feature/fresh"), None),  # made from main, no work yet: not merged
        (slot(7, "JA-7"), None),  # claimed, never deployed
        (slot(8, branch="feature/merged", deployed_at=NOW - HOUR), None),  # a free slot
        # The row keeps the last deploy's branch across a release: a claim that has not
        # deployed since it was taken is not judged by its predecessor's branch.
        (slot(9, "JA-9", branch="feature/merged", deployed_at=NOW - 2 * HOUR), None),
        # Expired is expired, whatever the branch (and git need not be asked).
        (deployed(3, "feature/gone", expires_at=NOW - HOUR), "expired 1h ago"),
    ],
)
def test_what_reap_frees_and_why(state, reason):
    report = plan_reap([state], NOW, GIT)
    assert reasons(report.items) == ({state.slot_id: reason} if reason else {})
    assert report.problem is None
    assert all(item.outcome == "would release" for item in report.items)


def test_an_expired_claim_is_released_only_while_still_expired_a_branch_one_by_commit():
    items = plan_reap(
        [slot(4, "JA-4", expires_at=NOW - HOUR), deployed(3, "feature/gone")], NOW, GIT
    ).items
    assert [(i.slot.slot_id, i.expired) for i in items] == [(3, False), (4, True)]


def test_items_come_in_slot_order():
    states = [
        deployed(1, "feature/merged"),
        slot(2, "JA-2", expires_at=NOW - HOUR),
        deployed(3, "feature/gone"),
        slot(4, "JA-4", expires_at=NOW - HOUR),
    ]
    assert [i.slot.slot_id for i in plan_reap(states, NOW, GIT).items] == [1, 2, 3, 4]


def test_without_git_only_expired_claims_are_freed_and_the_problem_is_said():
    states = [deployed(1, "feature/merged"), slot(2, "JA-2", expires_at=NOW - HOUR)]
    report = plan_reap(states, NOW, problem="branches not checked: git ls-remote x failed")
    assert reasons(report.items) == {2: "expired 1h ago"}
    assert report.problem == "branches not checked: git ls-remote x failed"


def test_only_unexpired_claims_with_their_own_deploy_off_main_are_judged_by_branch():
    states = [
        deployed(1, "feature/merged"),
        deployed(2, "main"),
        deployed(3, "feature/open", expires_at=NOW - HOUR),
        slot(4, "JA-4"),
        slot(5, "JA-5", branch="feature/open", deployed_at=NOW - 2 * HOUR),
        slot(6, branch="feature/open", deployed_at=NOW),
    ]
    assert [s.slot_id for s in judged_by_branch(states, NOW)] == [1]


def test_git_is_asked_only_about_the_branches_that_need_judging(monkeypatch):
    asked = []

    def branch_facts(url, branches):
        asked.append((url, list(branches)))
        return GIT

    monkeypatch.setattr(branches_module, "branch_facts", branch_facts)
    expired_only = [slot(2, "JA-2", expires_at=NOW - HOUR), deployed(5, "main")]
    assert reasons(find_reapable(expired_only, "repo.git", NOW).items) == {2: "expired 1h ago"}
    assert asked == []
    states = [*expired_only, deployed(1, "feature/merged"), deployed(3, "feature/open")]
    report = find_reapable(states, "repo.git", NOW)
    assert asked == [("repo.git", ["feature/merged", "feature/open"])]
    assert reasons(report.items) == {
        1: "branch feature/merged is merged into main",
        2: "expired 1h ago",
    }


def test_git_that_cannot_be_asked_still_frees_the_expired(monkeypatch):
    def branch_facts(url, branches):
        raise StagingError("git ls-remote repo.git failed: not found")

    monkeypatch.setattr(branches_module, "branch_facts", branch_facts)
    states = [deployed(1, "feature/merged"), slot(2, "JA-2", expires_at=NOW - HOUR)]
    report = find_reapable(states, "repo.git", NOW)
    assert reasons(report.items) == {2: "expired 1h ago"}
    assert report.problem == "branches not checked: git ls-remote repo.git failed: not found"
