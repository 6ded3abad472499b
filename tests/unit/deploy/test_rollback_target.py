"""Which release a failed deploy or `invoke rollback` goes back to: facts (the slot's release
listing, what is current, --to) in, the release out."""

from __future__ import annotations

import json

import pytest

from staging_ops.deploy.releases_sh import Release, parse_list
from staging_ops.deploy.rollback import newest_good, rollback_target
from staging_ops.errors import BadInput, StagingError
from staging_ops.inventory import Slot

SLOT = Slot(
    4, "staging-4", "staging-4.justapply.net", 5004, 8084, "job_search_staging_4", "qa", "h"
)


def rel(name: str, ok: bool = True, bad: bool = False) -> Release:
    return Release(name, bad=bad, ok=ok, commit=f"c-{name}", branch="b")


# Newest first, as the listing gives them.
R5, R4, R3, R2, R1 = "r5", "r4", "r3", "r2", "r1"


@pytest.mark.parametrize(
    ("releases", "failed", "previous", "expected"),
    [
        # What served before, if verified: even when a newer good one exists (rolled away from).
        ([rel(R5), rel(R4), rel(R3)], R5, R3, R3),
        ([rel(R5), rel(R4)], R5, R4, R4),
        # What served before was never verified (a killed deploy's): the newest verified one.
        ([rel(R5), rel(R4, ok=False), rel(R3)], R5, R4, R3),
        # ... or it was marked bad since.
        ([rel(R5), rel(R4, bad=True), rel(R3)], R5, R4, R3),
        # Nothing served before (first deploy): the newest verified one but the failed.
        ([rel(R5), rel(R4)], R5, None, R4),
        # The failed one is never the target, even if it carries an old `.ok`.
        ([rel(R5)], R5, R5, None),
        # Nothing verified: none (the slot is stopped).
        ([rel(R5, ok=False), rel(R4, ok=False)], R5, R4, None),
        ([], R5, None, None),
    ],
)
def test_after_a_failed_deploy(releases, failed, previous, expected):
    target = newest_good(releases, exclude=failed, prefer=previous)
    assert (target and target.name) == expected


@pytest.mark.parametrize(
    ("releases", "current", "to", "expected"),
    [
        # The newest verified-good release older than the current one.
        ([rel(R5), rel(R4), rel(R3)], R5, None, R4),
        ([rel(R5), rel(R4), rel(R3)], R4, None, R3),
        # Skipping bad and unverified ones.
        ([rel(R5), rel(R4, bad=True), rel(R3, ok=False), rel(R2)], R5, None, R2),
        # Never newer than the current one (an operator rolled away from it).
        ([rel(R5), rel(R4), rel(R3)], R3, None, None),
        # The current link is not a release (removed, or nothing): any verified one.
        ([rel(R5), rel(R4)], None, None, R5),
        ([rel(R5), rel(R4)], "gone", None, R5),
        # --to: that release, verified or not (it is verified on the way), unless bad.
        ([rel(R5), rel(R4, ok=False), rel(R3)], R5, R4, R4),
        ([rel(R5), rel(R4), rel(R3)], R4, R5, R5),
    ],
)
def test_rollback_target(releases, current, to, expected):
    if expected is None:
        with pytest.raises(StagingError, match="no earlier verified-good release"):
            rollback_target(releases, current, to, SLOT)
    else:
        assert rollback_target(releases, current, to, SLOT).name == expected


@pytest.mark.parametrize(
    ("to", "message"),
    [
        (R4, "staging-4: release r4 is marked bad"),
        ("r9", r"staging-4: no release 'r9' \(releases: r5, r4\)"),
    ],
)
def test_rollback_to_refuses(to, message):
    with pytest.raises(BadInput, match=message):
        rollback_target([rel(R5), rel(R4, bad=True)], R5, to, SLOT)


def test_parse_list():
    out = json.dumps(
        [
            {"name": "r3", "bad": False, "verified": True, "commit": "abcdef1234", "branch": "x"},
            {"name": "r2", "bad": True, "verified": False, "commit": "12345", "branch": "main"},
            {"name": "r1", "bad": False, "verified": False, "commit": "", "branch": ""},
        ]
    )
    assert parse_list(out + "\n") == [
        Release(name="r3", bad=False, ok=True, commit="abcdef1234", branch="x"),
        Release(name="r2", bad=True, ok=False, commit="12345", branch="main"),
        Release(name="r1", bad=False, ok=False, commit="", branch=""),
    ]
    assert parse_list("[]\n") == []


@pytest.mark.parametrize(
    "out",
    [
        "",
        "r1 0 1 abc main\n",  # the old line format
        '[{"name": "r1"}]',
        '{"name": "r1"}',
        "[1]",
    ],
)
def test_an_unreadable_listing_is_one_clear_error(out):
    with pytest.raises(StagingError, match=r"deploy-releases\.sh list: unreadable answer"):
        parse_list(out)
