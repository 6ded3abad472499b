"""The `switch` step: `current` pointed at the new release atomically (a new link renamed
over the old one), behind the lock's fence; and reading where it points."""

from __future__ import annotations

from typing import TYPE_CHECKING

from staging_ops.deploy import current_sh
from staging_ops.deploy.claim import fence
from staging_ops.deploy.steps import Run, Step

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer


def switch(deployer: Deployer, release: str | None) -> None:
    """Point `current` at `release` (None: remove it, the slot has no release to serve)."""
    current = deployer.paths.current
    if release is None:
        deployer.run(current_sh.clear_command(current), guarded=True)
        return
    deployer.run(current_sh.set_command(current, release), guarded=True)


def current_release(deployer: Deployer) -> str | None:
    """The release `current` points at, or None."""
    _, out, _ = deployer.run(current_sh.read_command(deployer.paths.current))
    return current_sh.parse_read(out)


def _fence(deployer: Deployer, run: Run) -> None:
    # Plain `release` takes no lock: the claim is read again here, under ours (claim.py). The
    # way back after a failed go-live does not ask: it restores what served.
    fence(run.registry, deployer.slot, run.claim, run.result.branch)


def _step(deployer: Deployer, run: Run) -> str:
    switch(deployer, run.result.release)
    return f"{run.previous or 'nothing'} -> {run.result.release}"


STEP = Step("switch", _step, crash_point="deploy:after-switch", guard=_fence)
