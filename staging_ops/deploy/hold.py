"""The `hold claim` step: the claim the `claim` step decided, written once the branch's commit
is known and under the slot's lock (claim.py says why then)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from staging_ops.deploy import announce
from staging_ops.deploy.claim import hold
from staging_ops.deploy.steps import Run, Step

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer


def _step(deployer: Deployer, run: Run) -> str:
    detail = hold(run.registry, deployer.slot, run.claim, run.result.branch)
    announce.started(deployer, run)  # GitHub's in_progress: the commit is known, the claim held
    return detail


STEP = Step("hold claim", _step, changes=True)
