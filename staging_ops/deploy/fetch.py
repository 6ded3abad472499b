"""The `fetch` step: the droplet's shared git mirror brought up to date (remote script
deploy-fetch.sh, under the mirror's flock), and the branch's commit read from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from staging_ops import remote
from staging_ops.deploy.steps import Run, Step, tail
from staging_ops.errors import StagingError

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

NOT_FOUND = 44  # deploy-fetch.sh's exit code for a branch the repository does not have


def fetch(deployer: Deployer, branch: str) -> str:
    """Update the droplet's shared mirror; the branch's commit, or StagingError if unknown."""
    paths = deployer.paths
    code, out, err = deployer.run(
        remote.script_command(
            "deploy-fetch.sh",
            deployer.host.base_dir,
            paths.mirror,
            paths.mirror + ".lock",
            deployer.app.repo_url,
            f"refs/heads/{branch}^{{commit}}",
            NOT_FOUND,
        ),
        check=False,
    )
    if code == NOT_FOUND:
        raise StagingError(f"branch not found: {branch!r} in {deployer.app.repo_url}")
    if code != 0:
        raise StagingError(tail(err or out))
    return out.strip().splitlines()[-1]


def _step(deployer: Deployer, run: Run) -> str:
    run.result.commit = fetch(deployer, run.result.branch)
    return run.result.commit[:12]


STEP = Step("fetch", _step, crash_point="deploy:after-fetch")
