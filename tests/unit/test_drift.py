"""drift.decide as a table: the registry's commit, the release `current` points to (and whether
it was verified), the commit /api/version serves (and whether the slot is free) in; the verdict,
the pairs that differ and the unverified live release out."""

from __future__ import annotations

import json

import pytest

from staging_ops.drift import LiveRelease, decide, live_json, of_slot
from staging_ops.errors import StagingError
from staging_ops.remote.live import parse_live

A, B = "a" * 40, "b" * 40
R_A, R_B = (
    LiveRelease("20261201T120000000Z-aaaaaaa", A, verified=True),
    LiveRelease("20261201T130000000Z-bbbbbbb", B, verified=True),
)
# What a deploy killed (or cut off) after its switch leaves live: never verified.
U_A, U_B = (
    LiveRelease("20261201T150000000Z-aaaaaaa", A),
    LiveRelease("20261201T160000000Z-bbbbbbb", B),
)
NO_LINK = LiveRelease()
DANGLING = LiveRelease("20261201T140000000Z-ccccccc", None)
UNREAD = None  # the droplet was not reached
RC, RS, CS = ("registry", "current"), ("registry", "served"), ("current", "served")

# (registry commit, current, served, released, state, pairs, unverified)
CASES = [
    ("all three agree", A, R_A, A, False, "ok", (), None),
    ("current moved, UI not restarted", A, R_B, A, False, "drift", (RC, CS), None),
    ("current moved, UI restarted on it", A, R_B, B, False, "drift", (RC, RS), None),
    ("the UI serves something else", A, R_A, B, False, "drift", (RS, CS), None),
    ("UI down: nothing served to compare", A, R_A, None, False, "ok", (), None),
    ("UI down, current moved", A, R_B, None, False, "drift", (RC,), None),
    ("droplet not reached, the rest agrees", A, UNREAD, A, False, "unknown", (), None),
    ("droplet not reached, served differs", A, UNREAD, B, False, "drift", (RS,), None),
    ("droplet and UI unknown", A, UNREAD, None, False, "unknown", (), None),
    ("claimed, current removed", A, NO_LINK, None, False, "drift", (RC,), None),
    ("claimed, current removed, old process serves", A, NO_LINK, A, False, "drift", (RC, CS), None),
    ("released --stop: no link, last commit recorded", A, NO_LINK, None, True, "ok", (), None),
    ("released, still serving what it recorded", A, R_A, A, True, "ok", (), None),
    ("released, current moved", A, R_B, A, True, "drift", (RC, CS), None),
    ("never deployed", None, NO_LINK, None, False, "ok", (), None),
    ("a release nobody recorded", None, R_A, A, True, "drift", (RC, RS), None),
    ("current dangles (no commit, no .ok)", A, DANGLING, None, False, "drift", (RC,), DANGLING),
    ("same commit redeployed, killed after the switch", A, U_A, A, False, "unverified", (), U_A),
    ("unverified live, UI down", A, U_A, None, False, "unverified", (), U_A),
    ("unverified live on a free slot", A, U_A, A, True, "unverified", (), U_A),
    ("killed after the switch, old process serves", A, U_B, A, False, "drift", (RC, CS), U_B),
    ("killed after the switch, new one serves", A, U_B, B, False, "drift", (RC, RS), U_B),
    ("unverified and nothing recorded", None, U_A, A, False, "drift", (RC, RS), U_A),
]


@pytest.mark.parametrize(
    ("registry", "current", "served", "released", "state", "pairs", "unverified"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide(registry, current, served, released, state, pairs, unverified):
    verdict = decide(registry, current, served, released=released)
    assert (verdict.state, verdict.pairs) == (state, pairs)
    assert verdict.unverified == (unverified.release if unverified else None)
    assert verdict.drifted == (state == "drift")
    assert (verdict.message is None) == (state == "ok")
    assert (verdict.label() == "no") == (state == "ok")


def test_the_message_names_each_pair_with_release_and_commits():
    verdict = decide(A, R_B, B)
    assert verdict.message == (
        f"drift: current points to {R_B.release} ({B[:12]}) but the registry records {A[:12]}; "
        f"/api/version serves {B[:12]} but the registry records {A[:12]}"
    )
    assert decide(A, R_B, A).message.endswith(
        f"/api/version serves {A[:12]} but current points to {R_B.release} ({B[:12]})"
    )
    assert (
        "current points to no release but the registry records" in decide(A, NO_LINK, None).message
    )
    assert "(no commit) but the registry records" in decide(A, DANGLING, None).message
    assert "the registry records no commit" in decide(None, R_A, None).message


def test_unknown_says_why():
    verdict = decide(A, UNREAD, A, unread_reason="cannot reach h1 (10.0.0.1:22): timed out")
    assert verdict.message == (
        "drift unknown: the droplet's current release was not read: "
        "cannot reach h1 (10.0.0.1:22): timed out"
    )


def test_unverified_is_said_alone_or_after_the_drift():
    assert decide(A, U_A, A).message == (
        f"unverified: current points to {U_A.release}, never verified"
    )
    assert decide(A, U_B, B).message == (
        f"drift: current points to {U_B.release} ({B[:12]}) but the registry records {A[:12]}; "
        f"/api/version serves {B[:12]} but the registry records {A[:12]}; "
        f"unverified: current points to {U_B.release}, never verified"
    )


@pytest.mark.parametrize(
    ("current", "served", "status", "state", "label"),
    [
        (R_A, A, "claimed", "ok", "no"),
        (R_B, A, "claimed", "drift", "registry≠current, current≠served"),
        (None, A, "claimed", "unknown", "unknown"),  # not read
        (NO_LINK, None, "free", "ok", "no"),
        (NO_LINK, None, "claimed", "drift", "registry≠current"),
        (NO_LINK, None, "unregistered", "ok", "no"),
        (U_A, A, "claimed", "unverified", "unverified"),
        (U_B, B, "claimed", "drift", "registry≠current, registry≠served, unverified"),
    ],
)
def test_of_slot(current, served, status, state, label):
    verdict = of_slot(A, status, current, served)
    assert (verdict.state, verdict.label()) == (state, label)
    assert verdict.as_json()["label"] == label


def test_a_release_not_read_says_why():
    assert of_slot(A, "claimed", None, A, "cannot reach h1").message == (
        "drift unknown: the droplet's current release was not read: cannot reach h1"
    )
    assert live_json(None, "cannot reach h1") == {"error": "cannot reach h1"}
    assert live_json(R_A) == R_A.as_json()


def test_the_json_verdict_carries_everything_the_views_show():
    assert decide(A, R_A, A).as_json() == {
        "state": "ok",
        "pairs": [],
        "unverified": None,
        "label": "no",
        "message": None,
    }
    assert decide(A, U_B, A).as_json() == {
        "state": "drift",
        "pairs": [["registry", "current"], ["current", "served"]],
        "unverified": U_B.release,
        "label": "registry≠current, current≠served, unverified",
        "message": decide(A, U_B, A).message,
    }


def test_live_release_json():
    assert LiveRelease("r1", A, "main", True).as_json() == {
        "release": "r1",
        "commit": A,
        "branch": "main",
        "verified": True,
    }
    assert NO_LINK.as_json() == {"release": None, "commit": None, "branch": None, "verified": False}


# status-live.sh's entries (remote/live.py parses its JSON line) -> the releases, in order
def entry(target: str, commit: str, branch: str, verified: int) -> dict:
    return {"target": target, "commit": commit, "branch": branch, "verified": verified}


LIVE_ENTRIES = [
    ("no link", None, NO_LINK),
    ("a verified release", entry("releases/r1", A, "main", 1), LiveRelease("r1", A, "main", True)),
    ("not verified", entry("releases/r2", B, "feat/x", 0), LiveRelease("r2", B, "feat/x")),
    ("no .release-env", entry("releases/r3", "", "", 0), LiveRelease("r3", None, None)),
    (
        "an absolute target",
        entry("/srv/staging/staging-1/releases/r4/", A, "main", 1),
        LiveRelease("r4", A, "main", True),
    ),
]


def answer(*slots: object) -> str:
    return json.dumps({"slots": list(slots), "units": []}) + "\n"


@pytest.mark.parametrize(
    ("slot", "live"), [c[1:] for c in LIVE_ENTRIES], ids=[c[0] for c in LIVE_ENTRIES]
)
def test_status_live_entries(slot, live):
    assert parse_live(answer(slot), 1)[0] == [live]


def test_status_live_answer_must_have_one_entry_per_slot_and_be_json():
    with pytest.raises(StagingError, match="1 answers for 2 slots"):
        parse_live(answer(None), 2)
    for bad in ("-\nsystemctl\n", "", '{"slots": [{"target": "r"}], "units": []}', "[]"):
        with pytest.raises(StagingError, match="unreadable answer"):
            parse_live(bad, 1)
