"""verify's unit check: deploy-verify-units.sh's output (each unit's ActiveState, SubState and
NRestarts) and the baseline the restart read in, the first unit that does not stay up out."""

from __future__ import annotations

import pytest

from staging_ops.deploy.verify import unit_problem

UNITS = ["ui", "web", "sched"]


def show(*units: tuple[str, str, str | None]) -> str:
    """`systemctl show -p ActiveState -p SubState -p NRestarts` of units given as (active,
    sub, restarts); systemd lists the properties in its own order, not ours."""
    blocks = []
    for active, sub, restarts in units:
        lines = [f"SubState={sub}", f"ActiveState={active}"]
        if restarts is not None:  # the sandbox's stand-in has no NRestarts
            lines.insert(1, f"NRestarts={restarts}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


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
    assert unit_problem(UNITS, out, before) == problem
