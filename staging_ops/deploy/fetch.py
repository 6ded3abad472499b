"""The `fetch` step: the droplet's shared git mirror brought up to date (remote script
deploy-fetch.sh, under the mirror's flock), and the branch's commit read from it."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from staging_ops.deploy.steps import Run, Step, tail
from staging_ops.errors import StagingError
from staging_ops.processes import SpecError, spec_from_files
from staging_ops.processes.spec import APP_JSON, PROCFILE
from staging_ops.remote.scripts import home, script_command

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

NOT_FOUND = 44  # deploy-fetch.sh's exit code for a branch the repository does not have
# The app's own declaration files, read from the commit at the repository root.
SPEC_FILES = (PROCFILE, APP_JSON)
# A Procfile or app.json larger than this is not one (the script sends at most 1 MiB).
MAX_SPEC_BYTES = 256 * 1024


@home("deploy-fetch.sh")
def fetch_command(
    base_dir: str,
    mirror: str,
    mirror_lock: str,
    repo_url: str,
    ref: str,
    not_found: int,
    *files: str,
) -> str:
    """Update MIRROR, print REF's commit and each of `files` (parse_fetch reads it)."""
    return script_command(
        "deploy-fetch.sh", base_dir, mirror, mirror_lock, repo_url, ref, not_found, *files
    )


def fetch(deployer: Deployer, branch: str, pin: str | None = None) -> Fetched:
    """Update the droplet's shared mirror; the branch's commit (or `pin`, a commit pushed to
    it) and its Procfile and app.json texts (None: absent), or StagingError if the branch (or
    the commit) is unknown."""
    paths = deployer.paths
    code, out, err = deployer.run(
        fetch_command(
            deployer.host.base_dir,
            paths.mirror,
            paths.mirror + ".lock",
            deployer.app.repo_url,
            f"{pin or f'refs/heads/{branch}'}^{{commit}}",
            NOT_FOUND,
            *SPEC_FILES,
        ),
        check=False,
    )
    if code == NOT_FOUND:
        if pin:
            raise StagingError(f"commit not found: {pin} (pushed to {branch!r})")
        raise StagingError(f"branch not found: {branch!r} in {deployer.app.repo_url}")
    if code != 0:
        raise StagingError(tail(err or out))
    return parse_fetch(out)


@dataclass(frozen=True)
class Fetched:
    """deploy-fetch.sh's answer: the commit, and each file asked for: its text, None if the
    commit has none."""

    commit: str
    files: dict[str, str | None]


def parse_fetch(out: str) -> Fetched:
    """deploy-fetch.sh's JSON line -> Fetched (each file decoded: SpecError if it is too large
    or not UTF-8); StagingError if it is not that."""
    try:
        found = json.loads(out)
        commit, listed = found["commit"], found["files"]
        if not isinstance(commit, str) or not isinstance(listed, dict):
            raise TypeError("not a commit and files")
        sent = {
            str(name): None if file is None else (int(file["size"]), str(file["base64"]))
            for name, file in listed.items()
        }
    except (ValueError, TypeError, KeyError):
        raise StagingError(f"deploy-fetch.sh: unreadable answer {out[:200]!r}") from None
    files = {name: None if f is None else _decoded(name, *f) for name, f in sent.items()}
    return Fetched(commit, files)


def _decoded(name: str, size: int, encoded: str) -> str:
    if size > MAX_SPEC_BYTES:
        raise SpecError(f"{name}: {size} bytes, more than a {name} can be ({MAX_SPEC_BYTES})")
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise SpecError(f"{name}: not UTF-8 text") from None


def _step(deployer: Deployer, run: Run) -> str:
    fetched = fetch(deployer, run.result.branch, run.pin)
    run.result.commit = fetched.commit
    spec = spec_from_files(fetched.files.get(PROCFILE), fetched.files.get(APP_JSON), deployer.app)
    deployer.use_spec(spec)
    if spec.source == PROCFILE:
        return f"{run.result.commit[:12]} (Procfile: {', '.join(spec.types)})"
    return run.result.commit[:12]


STEP = Step("fetch", _step, crash_point="deploy:after-fetch")
