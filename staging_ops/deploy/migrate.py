"""The `migrate` step: the app's migration command run in the new release, as the service
user with the slot's env, before anything serves from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from staging_ops.deploy.progress import ticking
from staging_ops.deploy.release import mark_bad
from staging_ops.deploy.steps import Run, Step, tail
from staging_ops.errors import StagingError
from staging_ops.inventory import Host, Slot
from staging_ops.remote.scripts import home, script_command
from staging_ops.render import RUNNER_DIR

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer


@home("deploy-migrate.sh")
def command(runner: str, base_dir: str, slot: str, where: str, service_user: str) -> str:
    """deploy-migrate.sh: the `release` process of BASE_DIR/SLOT/WHERE run once by RUNNER."""
    return script_command("deploy-migrate.sh", runner, base_dir, slot, where, service_user)


def migrate_command(host: Host, slot: Slot, release: str) -> str:
    """The remote command: the release's `release` process (its Procfile's, else the
    inventory's migrate_command) run once by the slot's runner, as the service user."""
    return command(
        f"{host.base_dir}/{RUNNER_DIR}/run-process",
        host.base_dir,
        slot.identifier,
        f"releases/{release}",
        host.service_user,
    )


def migrate(deployer: Deployer, release: str) -> None:
    """Migrate `release`; a failure marks it bad and raises with the command's last lines."""
    command = migrate_command(deployer.host, deployer.slot, release)
    with ticking(deployer.log.progress, "migrate", "the release phase is running"):
        code, out, err = deployer.run(command, check=False)
    if code != 0:
        mark_bad(deployer, release)
        raise StagingError(tail(err or out))


def _step(deployer: Deployer, run: Run) -> str | None:
    migrate(deployer, run.result.release)
    if deployer.spec.release_command is None:
        return "the Procfile declares no release phase"
    return None


STEP = Step("migrate", _step, crash_point="deploy:after-migrate")
