"""verify's unit check: deploy-verify-units.sh's output (states and NRestarts, asked at once,
so their lines may interleave) and the
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
        # The counts came first, or between the states: each list keeps its order.
        ("0 1 0\nactive active active\n", {}, "web is active: it does not stay up"),
        ("active\n0 0 3\nactive active\n", {"sched": 2}, "sched is active: it does not stay up"),
        ("0\nactive\n0 0\nfailed active\n", {}, "web is failed: it does not stay up"),
    ],
)
def test_unit_problem(out, before, problem):
    assert unit_problem(UNITS, out, before) == problem
