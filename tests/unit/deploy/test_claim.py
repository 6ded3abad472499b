"""Deploy's and rollback's claim rules, without a registry: the slot's row in, the check (or
the refusal) out."""

from __future__ import annotations

import pytest

from staging_ops.deploy.claim import ClaimCheck, branch_gone, deploy_claim, lost, rollback_claim
from staging_ops.errors import BadInput, Conflict
from staging_ops.inventory import Slot
from staging_ops.slots.model import SlotState
from staging_ops.web.webhooks import github

SLOT = Slot(
    4, "staging-4", "staging-4.justapply.net", 5004, 8084, "job_search_staging_4", "qa", "h"
)
ME = "me@laptop"


def row(task: str | None = None, owner: str | None = None) -> SlotState:
    status = "claimed" if task or owner else "free"
    return SlotState(4, "staging-4", "staging-4.justapply.net", "qa", status, task, owner)


@pytest.mark.parametrize(
    ("state", "task", "force", "expected"),
    [
        # A free slot is claimed for the operator's task.
        (row(), "JA-1", False, ClaimCheck(f"free: for JA-1 ({ME})", "JA-1", True, ("JA-1", ME))),
        (row(), "JA-1", True, ClaimCheck(f"free: for JA-1 ({ME})", "JA-1", True, ("JA-1", ME))),
        # Held by the same task: deployed, the holder's claim renewed (their owner kept).
        (
            row("JA-1", "alice"),
            "JA-1",
            False,
            ClaimCheck("held by JA-1", "JA-1", True, ("JA-1", "alice"), renew=True),
        ),
        # No task known: the operator's own claim.
        (
            row("JA-1", ME),
            None,
            False,
            ClaimCheck("held by JA-1", "JA-1", True, ("JA-1", ME), renew=True),
        ),
        # Another task's slot under --force: deployed, the claim stays theirs, not renewed.
        (
            row("JA-2", "bob"),
            "JA-1",
            True,
            ClaimCheck("held by JA-2 (bob); deploy anyway (--force)", "JA-2", True, None),
        ),
        (
            row("JA-2", "bob"),
            None,
            True,
            ClaimCheck("held by JA-2 (bob); deploy anyway (--force)", "JA-2", True, None),
        ),
    ],
)
def test_deploy_claim(state, task, force, expected):
    assert deploy_claim(state, SLOT, task, ME, force) == expected


@pytest.mark.parametrize(
    ("state", "task", "force", "error", "message"),
    [
        (
            row("JA-2", "bob"),
            "JA-1",
            False,
            Conflict,
            r"held by task JA-2 \(owner bob\).*--task JA-2",
        ),
        (row("JA-2", "bob"), None, False, Conflict, "or --force"),
        (row(), None, False, BadInput, "free and no task is known"),
        (row(), None, True, BadInput, "free and no task is known"),
    ],
)
def test_deploy_claim_refuses(state, task, force, error, message):
    with pytest.raises(error, match=message):
        deploy_claim(state, SLOT, task, ME, force)


@pytest.mark.parametrize(
    ("state", "task", "force", "expected"),
    [
        # Rollback claims nothing, not even a renewal.
        (row("JA-1", "alice"), "JA-1", False, ClaimCheck("held by JA-1", "JA-1")),
        (row("JA-1", ME), None, False, ClaimCheck("held by JA-1", "JA-1")),
        (
            row("JA-2", "bob"),
            "JA-1",
            True,
            ClaimCheck("held by JA-2 (bob); rollback anyway (--force)", "JA-2"),
        ),
        # A free slot under --force: rolled back, nothing recorded.
        (
            row(),
            None,
            True,
            ClaimCheck("free; rolling back anyway (--force), the slot stays free", record=False),
        ),
    ],
)
def test_rollback_claim(state, task, force, expected):
    assert rollback_claim(state, SLOT, task, ME, force) == expected


@pytest.mark.parametrize(
    ("state", "task", "message"),
    [
        (row(), "JA-1", "staging-4 is free: claim it first"),
        (row(), None, "staging-4 is free: claim it first"),
        (row("JA-2", "bob"), "JA-1", "this rollback is for it, or --force"),
        (row("JA-2", "bob"), None, "held by task JA-2"),
    ],
)
def test_rollback_claim_refuses(state, task, message):
    with pytest.raises(Conflict, match=message):
        rollback_claim(state, SLOT, task, ME, False)


@pytest.mark.parametrize(
    ("state", "check", "gone"),
    [
        (row("JA-1", ME), ClaimCheck("", "JA-1"), False),  # still held: the run goes on
        (row("JA-1", "bob"), ClaimCheck("", "JA-1"), False),  # same task, another owner
        (row(), ClaimCheck("", "JA-1"), True),  # released meanwhile
        (row("JA-2", "bob"), ClaimCheck("", "JA-1"), True),  # released and re-taken
        (row(), ClaimCheck("", record=False), False),  # forced on a free slot: no claim
        (row("JA-2", "bob"), ClaimCheck("", record=False), False),  # claimed since: not ours
    ],
)
def test_a_claim_is_lost_when_released_or_taken_by_another_task(state, check, gone):
    assert lost(state, check) is gone


def _github_reason(event: str, payload: dict) -> str:
    decision = github.decide(event, payload, "o/r")
    assert decision.action == "release", decision
    return decision.reason


_REPO = {"full_name": "o/r", "html_url": "https://github.com/o/r"}


@pytest.mark.parametrize(
    ("reason", "branch", "gone"),
    [
        # What the GitHub webhook records (its own words, made by github.decide).
        (
            _github_reason(
                "pull_request",
                {
                    "action": "closed",
                    "repository": _REPO,
                    "pull_request": {
                        "number": 7,
                        "merged": True,
                        "head": {"ref": "ja-1-x", "repo": {"full_name": "o/r"}},
                        "html_url": "https://github.com/o/r/pull/7",
                    },
                },
            ),
            "ja-1-x",
            "merged",
        ),
        (
            _github_reason("delete", {"ref_type": "branch", "ref": "ja-1-x", "repository": _REPO}),
            "ja-1-x",
            "deleted",
        ),
        # What the reap records.
        ("branch ja-1-x is merged into main", "ja-1-x", "merged"),
        ("branch ja-1-x was deleted", "ja-1-x", "deleted"),
        # Another branch, or another reason: not this branch's merge.
        ("PR #7 merged (ja-1-xy) https://github.com/o/r/pull/7", "ja-1-x", None),
        ("branch ja-1-x.2 is merged into main", "ja-1-x", None),
        ("JA-1 moved to Done https://linear.app/x", "ja-1-x", None),
        ("", "ja-1-x", None),
    ],
)
def test_a_release_reason_names_the_branch_merged_or_deleted(reason, branch, gone):
    assert branch_gone(reason, branch) == gone
