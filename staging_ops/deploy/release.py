"""The `export + venv` step: the commit exported into a new release directory with the slot's
env and a venv (built, or reused from the droplet's cache), renamed into place when whole
(remote script deploy-release.sh); and a release's `.bad` mark."""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from staging_ops.deploy import current_sh
from staging_ops.deploy.progress import ticking
from staging_ops.deploy.steps import Run, Step, tail
from staging_ops.errors import StagingError
from staging_ops.remote.scripts import home, script_command
from staging_ops.render import render_release_env

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer


def release_name(now: datetime, commit: str) -> str:
    """`<UTC time to the millisecond>Z-<sha7>`: names sort by age."""
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{commit[:7]}"


@home("deploy-release.sh")
@dataclass(frozen=True)
class ExportArgs:
    """deploy-release.sh's arguments by name, in the order of its usage header (a unit test
    holds the two to each other); `command()` is the remote command, `parse` its answer."""

    SCRIPT = "deploy-release.sh"

    mirror: str
    commit: str
    partial: str
    release: str
    venvs: str
    release_env: str
    python: str
    service_user: str
    current: str
    spec: str
    processes: str
    find_links: str
    index_url: str
    requirements: tuple[str, ...] = ()

    def command(self) -> str:
        *fixed, requirements = astuple(self)
        return script_command(self.SCRIPT, *fixed, *requirements)


@dataclass(frozen=True)
class Exported:
    """What deploy-release.sh answers: the venv (`built <key>` or `reused <key>`) and the
    release `current` pointed to meanwhile (None: nothing)."""

    venv: str
    live: str | None

    @classmethod
    def parse(cls, out: str) -> Exported:
        """Its last line, after whatever pip said: {"venv": "built|reused", "key", "live":
        CURRENT's target or ""}; StagingError if it is not that."""
        last = (out.strip().splitlines() or [""])[-1]
        try:
            found = json.loads(last)
            venv, key, live = found["venv"], found["key"], found["live"]
            if not all(isinstance(v, str) for v in (venv, key, live)):
                raise TypeError("not strings")
        except (ValueError, TypeError, KeyError):
            raise StagingError(f"{ExportArgs.SCRIPT}: unreadable answer {last[:200]!r}") from None
        return cls(f"{venv} {key}", live.rsplit("/", 1)[-1] if live else None)


def export(deployer: Deployer, commit: str, branch: str) -> tuple[str, str, str | None]:
    """Export the commit into a new release dir with the slot's env and a cached venv.
    Returns (release name, 'built <hash>' or 'reused <hash>', the live release or None):
    the live one is read here to save a round trip (the lock keeps it from changing)."""
    paths = deployer.paths
    now = datetime.now(UTC)
    name = release_name(now, commit)
    partial = f"{paths.releases}/.{name}.partial"
    args = ExportArgs(
        mirror=paths.mirror,
        commit=commit,
        partial=partial,
        release=f"{paths.releases}/{name}",
        venvs=paths.venvs,
        release_env=render_release_env(commit, branch, now.isoformat(timespec="seconds")),
        python=deployer.app.python,
        service_user=deployer.host.service_user,
        current=paths.current,
        spec=json.dumps(deployer.spec.as_json(), sort_keys=True),
        processes=deployer.spec.process_table() if deployer.spec.source != "inventory" else "",
        find_links=deployer.app.pip_find_links or "",
        index_url=deployer.app.pip_index_url or "",
        requirements=tuple(deployer.app.requirements),
    )
    with ticking(deployer.log.progress, "export + venv", "exporting the commit") as on_line:
        code, out, err = deployer.run(args.command(), check=False, on_line=on_line)
    if code != 0:
        deployer.run(current_sh.discard_command(partial), check=False)
        raise StagingError(tail(err or out))
    exported = Exported.parse(out)
    return name, exported.venv, exported.live


@home("deploy-mark-bad.sh")
def mark_bad_command(release_dir: str) -> str:
    """`.bad` in `release_dir`."""
    return script_command("deploy-mark-bad.sh", release_dir)


def mark_bad(deployer: Deployer, release: str) -> None:
    """`.bad` on a release that failed: rollback never picks it."""
    # Guarded like every step that changes what rollback and pruning see.
    deployer.run(
        mark_bad_command(f"{deployer.paths.releases}/{release}"), check=False, guarded=True
    )


def _step(deployer: Deployer, run: Run) -> str:
    result = run.result
    result.release, result.venv, run.previous = export(deployer, result.commit, result.branch)
    return f"{result.release}, venv {result.venv}"


STEP = Step("export + venv", _step, crash_point="deploy:after-venv")
