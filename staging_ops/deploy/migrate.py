"""The `migrate` step: the app's migration command run in the new release, as the service
user with the slot's env, before anything serves from it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from staging_ops import remote
from staging_ops.deploy.release import mark_bad
from staging_ops.deploy.steps import Run, Step, tail
from staging_ops.errors import StagingError
from staging_ops.inventory import App

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer


def migrate_command(app: App, service_user: str, release_dir: str) -> str:
    """The remote command: the inventory's migrate_command (a command template, `{release}`
    and `{current}` standing for the release's directory) in a clean environment."""
    command = app.migrate_command.replace("{release}", release_dir).replace(
        "{current}", release_dir
    )
    return remote.script_command("deploy-migrate.sh", release_dir, service_user, command)


def migrate(deployer: Deployer, release: str) -> None:
    """Migrate `release`; a failure marks it bad and raises with the command's last lines."""
    command = migrate_command(
        deployer.app, deployer.host.service_user, f"{deployer.paths.releases}/{release}"
    )
    code, out, err = deployer.run(command, check=False)
    if code != 0:
        mark_bad(deployer, release)
        raise StagingError(tail(err or out))


def _step(deployer: Deployer, run: Run) -> None:
    migrate(deployer, run.result.release)


STEP = Step("migrate", _step, crash_point="deploy:after-migrate")
