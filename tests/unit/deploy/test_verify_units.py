"""verify's unit check: deploy-verify-units.sh's output (states, then NRestarts) and the
baseline the restart read in, the first unit that does not stay up out."""

from __future__ import annotations

import pytest

from staging_ops.deploy.verify import unit_problem

UNITS = ["ui", "web", "sched"]


@pytest.mark.parametrize(
    ("out", "before", "problem"),
    [
        ("active active active\n0 0 0\n", {}, None),
        # Restarted by systemd since our restart: crash-looping.
        ("active active active\n0 1 0\n", {}, "web is active: it does not stay up"),
        # The same count as before our restart (systemd keeps it across a manual restart).
        ("active active active\n2 1 0\n", {"ui": 2, "web": 1}, None),
        ("active failed active\n0 0 0\n", {}, "web is failed: it does not stay up"),
        ("inactive active active\n", {}, "ui is inactive: it does not stay up"),
        # Still starting: not a failure yet.
        ("activating activating active\n0 0 0\n", {}, None),
        # systemctl said nothing of the last unit: unknown, not failed.
        ("active active\n", {}, None),
    ],
)
def test_unit_problem(out, before, problem):
    assert unit_problem(UNITS, out, before) == problem
