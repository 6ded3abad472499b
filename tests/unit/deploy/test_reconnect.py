"""What a run that lost its host says, and when what serves is unverified: pure, from
release listings."""

from __future__ import annotations

import pytest

from staging_ops.deploy.reconnect import lost_line, unrecorded_line, unverified_note
from staging_ops.deploy.releases_sh import Release


def rel(name: str, ok: bool = True, bad: bool = False) -> Release:
    return Release(name, bad=bad, ok=ok, commit="c", branch="b")


@pytest.mark.parametrize(
    ("listing", "live", "note"),
    [
        ([rel("r2"), rel("r1")], "r2", None),
        ([rel("r2", ok=False), rel("r1")], "r2", "r2 serves but was never verified"),
        ([rel("r2", ok=False, bad=True)], "r2", "r2 serves but was marked bad"),
        ([rel("r1")], None, None),  # nothing serves
        ([rel("r1")], "elsewhere", None),  # not a release of ours: drift, not this check's
    ],
)
def test_unverified_note(listing, live, note):
    said = unverified_note(listing, live)
    assert (said is None) if note is None else said.startswith(note)


@pytest.mark.parametrize(
    ("restore", "task", "tail"),
    [
        (
            "r1",
            "JA-2",
            "restore the last verified one: invoke rollback --slot 2 --to r1 --task JA-2",
        ),
        ("r1", None, "restore the last verified one: invoke rollback --slot 2 --to r1 --force"),
        ("", "JA-2", "no verified release to restore; stop it: invoke release --slot 2 --stop"),
    ],
)
def test_lost_line(restore, task, tail):
    line = lost_line(2, "staging-2", "h1", "verify", "r2", restore, 3, task)
    assert "\n" not in line
    assert line.startswith(
        "staging-2: connection to h1 lost during verify, not regained after 3 tries: "
        "`current` points to r2, not verified; "
    )
    assert line.endswith(tail)


@pytest.mark.parametrize(("task", "claim"), [("JA-2", "--task JA-2"), (None, "--force")])
def test_unrecorded_line(task, claim):
    line = unrecorded_line(2, "staging-2", "h1", "r2", "not regained after 3 tries", task)
    assert line == (
        "staging-2: connection to h1 lost during record, not regained after 3 tries: "
        "`current` points to r2, verified but not recorded on the droplet (verify will call "
        f"it unverified); record it: invoke rollback --slot 2 --to r2 {claim}"
    )
