"""verify's unit check: deploy-verify-units.sh's output (each unit's ActiveState, SubState and
NRestarts) and the baseline the restart read in, the first unit that does not stay up out."""

from __future__ import annotations

import json

import pytest

from staging_ops.deploy.verify import UnitShown, parse_units, unit_problem
from staging_ops.errors import StagingError

UNITS = ["ui", "web", "sched"]


def show(*units: tuple[str, str, str | None]) -> str:
    """deploy-verify-units.sh's JSON line for units given as (active, sub, restarts): the
    properties systemctl showed, in its own order, not ours."""
    shown = []
    for active, sub, restarts in units:
        props = {"SubState": sub, "ActiveState": active}
        if restarts is not None:  # the sandbox's stand-in has no NRestarts
            props["NRestarts"] = restarts
        shown.append(props)
    return json.dumps(shown) + "\n"


UP = ("active", "running", "0")


@pytest.mark.parametrize(
    ("out", "before", "problem"),
    [
        (show(UP, UP, UP), {}, None),
        # Restarted by systemd since our restart: crash-looping.
        (show(UP, ("active", "running", "1"), UP), {}, "web is active: it does not stay up"),
        # The same count as before our restart.
        (
            show(("active", "running", "2"), ("active", "running", "1"), UP),
            {"ui": 2, "web": 1},
            None,
        ),
        (show(UP, ("failed", "failed", "0"), UP), {}, "web is failed: it does not stay up"),
        (show(("inactive", "dead", "0")), {}, "ui is inactive: it does not stay up"),
        # Died, and systemd waits RestartSec before it restarts it (and counts the restart).
        (
            show(UP, UP, ("activating", "auto-restart", "0")),
            {},
            "sched died and waits to be restarted: it does not stay up",
        ),
        # Still starting: not a failure yet.
        (show(("activating", "start", "0"), ("activating", "start", "0"), UP), {}, None),
        # systemctl said nothing of the last unit: unknown, not failed.
        (show(UP, UP), {}, None),
        # The sandbox's stand-in: no NRestarts.
        (
            show(
                ("active", "running", None), ("active", "running", None), ("failed", "failed", None)
            ),
            {},
            "sched is failed: it does not stay up",
        ),
        ("", {}, None),
    ],
)
def test_unit_problem(out, before, problem):
    assert unit_problem(UNITS, parse_units(out), before) == problem


def test_the_scripts_answer_reads_as_units_shown():
    assert parse_units(show(("active", "running", "2"), ("failed", "failed", None))) == [
        UnitShown("active", "running", 2),
        UnitShown("failed", "failed", None),
    ]


@pytest.mark.parametrize("out", ["ActiveState=active\n", '{"ActiveState": "active"}', "[1]"])
def test_an_unreadable_units_answer_is_one_clear_error(out):
    with pytest.raises(StagingError, match=r"deploy-verify-units\.sh: unreadable answer"):
        parse_units(out)
