"""The `switch` step: `current` pointed at the new release atomically (a new link renamed
over the old one), behind the lock's fence; and reading where it points."""

from __future__ import annotations

from typing import TYPE_CHECKING

from staging_ops import remote
from staging_ops.deploy.claim import fence
from staging_ops.deploy.steps import Run, Step

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer


def switch(deployer: Deployer, release: str | None) -> None:
    """Point `current` at `release` (None: remove it, the slot has no release to serve)."""
    q = remote.quote
    paths = deployer.paths
    if release is None:
        deployer.run(f"rm -f {q(paths.current)}", guarded=True)
        return
    tmp = f"{paths.root}/.current.tmp"
    deployer.run(
        f"ln -sfn {q('releases/' + release)} {q(tmp)} && mv -T {q(tmp)} {q(paths.current)}",
        guarded=True,
    )


def current_release(deployer: Deployer) -> str | None:
    """The release `current` points at, or None."""
    _, out, _ = deployer.run(f"readlink {remote.quote(deployer.paths.current)} || true")
    target = out.strip()
    return target.rsplit("/", 1)[-1] if target else None


def _step(deployer: Deployer, run: Run) -> str:
    # Plain `release` takes no lock: the claim is read again here, under ours (claim.py).
    fence(run.registry, deployer.slot, run.claim)
    switch(deployer, run.result.release)
    return f"{run.previous or 'nothing'} -> {run.result.release}"


STEP = Step("switch", _step, crash_point="deploy:after-switch")
