"""A webhook's auto-release outcome (claims.auto_release): per slot -> the exact entries the
webhook answers with (`retry` only on a release not done now), and its one-line summary."""

from __future__ import annotations

from staging_ops.claims.auto_release import AutoReleaseOutcome, SlotOutcome


def test_the_outcome_per_slot():
    outcome = AutoReleaseOutcome(
        [
            SlotOutcome(4, "JA-7", "ja-7-fix", True, "released"),
            SlotOutcome(5, "JA-8", None, False, "not done: the deploy lock is held", retry=True),
            SlotOutcome(6, "JA-9", "main", False, "skipped: the claim changed"),
        ]
    )
    assert outcome.slots_json() == [
        {"slot": 4, "task": "JA-7", "branch": "ja-7-fix", "released": True, "outcome": "released"},
        {
            "slot": 5,
            "task": "JA-8",
            "branch": None,
            "released": False,
            "outcome": "not done: the deploy lock is held",
            "retry": True,
        },
        {
            "slot": 6,
            "task": "JA-9",
            "branch": "main",
            "released": False,
            "outcome": "skipped: the claim changed",
        },
    ]
    assert (outcome.released, outcome.not_done) == ([4], [5])
    assert outcome.summary() == (
        "slot 4 (JA-7): released; slot 5 (JA-8): not done: the deploy lock is held; "
        "slot 6 (JA-9): skipped: the claim changed"
    )
    assert AutoReleaseOutcome().summary() == "no slot is held by it"
