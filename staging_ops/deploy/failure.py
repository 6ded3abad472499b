"""A failed deploy or rollback, told to the registry's history (`invoke history`, the
dashboard's recent events): who, branch and commit, the step that failed, and what serves now
(where `current` points afterwards: the previous release after a failure on the candidate, the
release rolled back to after one past the switch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import paramiko

from staging_ops.deploy import announce
from staging_ops.deploy.session import signals_ignored
from staging_ops.deploy.steps import Run
from staging_ops.deploy.switch import current_release
from staging_ops.errors import StagingError

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer


def record_failure(deployer: Deployer, run: Run) -> str | None:
    """Add the failed attempt to the slot's history; a warning if the registry could not take
    it (the deploy's own failure is what the operator must see), else None."""
    with signals_ignored():
        unknown = "unknown (the droplet did not answer)"
        if deployer.remote is None:  # lost, and not regained (reconnect.py)
            serving = unknown
        else:
            try:
                serving = current_release(deployer) or "nothing"
            except (OSError, paramiko.SSHException, StagingError):
                serving = unknown
        result = run.result
        try:
            run.registry.record_failed_deploy(
                deployer.slot.id,
                result.branch,
                result.commit,
                deployer.operator,
                deployer.failed_step,
                serving,
            )
        except StagingError as exc:
            return f"the failed deploy is not in the history: {exc}"
        finally:
            announce.failed(deployer, run, deployer.failed_step, serving)
    return None
