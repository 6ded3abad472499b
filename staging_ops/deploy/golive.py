"""The steps that make a release live, listed once: the candidate's (start, verify) and, from
the switch on, GO_LIVE's (switch, hand-over, main verify, candidate stop + scheduler restart).
A deploy and `invoke rollback` run them as printed steps (recipes.py); the way back after a
failed go-live runs the same steps' work inside its one `rollback` line (rollback.py)."""

from __future__ import annotations

from staging_ops.deploy import candidate, handover, switch

CANDIDATE = (candidate.START_STEP, candidate.VERIFY_STEP)
# From the switch on, a failure (or Ctrl-C, SIGTERM) goes back to a verified release.
GO_LIVE = (
    switch.STEP,
    handover.HANDOVER_STEP,
    handover.MAIN_VERIFY_STEP,
    handover.SCHEDULER_STEP,
)
