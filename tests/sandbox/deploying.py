"""Deploying the sample app's branches to a slot of a sandbox and reading what it serves: the
helpers the deploy modules share (the slot is always the caller's, from tests/sandbox/slots.py),
and the sample app's broken variants they push."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devtools import deploys
from devtools.sample_repo import push_branch, resolve
from staging_ops.health import public_version
from staging_ops.inventory import load_inventory
from tests.conftest import ROOT


def deploy(
    box, branch: str, slot: int, *extra: str, env: dict | None = None
) -> subprocess.CompletedProcess[str]:
    return deploys.run_deploy({**box.env(), **(env or {})}, slot, branch, *extra)


def start_deploy(
    box, branch: str, slot: int, *extra: str, env: dict | None = None
) -> subprocess.Popen:
    """The deploy in the background (devtools.deploys.start_deploy)."""
    return deploys.start_deploy({**box.env(), **(env or {})}, slot, branch, *extra)


def served(box, slot: int) -> str | None:
    inventory = load_inventory(box.inventory_path)
    answer = public_version(inventory.hosts[inventory.slots[slot].host], inventory.slots[slot])
    return answer["commit"] if answer else None


def wait_served(box, slot: int, timeout: float = 15) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        commit = served(box, slot)
        if commit:
            return commit
        time.sleep(0.1)
    return None


def commit_of(box, branch: str) -> str:
    return resolve(box.repo_path, branch)


def releases(box, slot: int) -> list[Path]:
    base = box.hosts[0].root / f"srv/staging/staging-{slot}/releases"
    return sorted(p for p in base.iterdir() if not p.name.startswith("."))


def push_scheduler_dies(box) -> str:
    """Push `scheduler-dies`: the first line of the scheduler's body ends the process; the
    web services are fine, so it fails only past the switch. Returns the branch."""
    push_app_variant(
        box,
        "scheduler-dies",
        '    """Print a heartbeat line now and every HEARTBEAT_SECONDS until SIGTERM/SIGINT."""\n',
        '    raise SystemExit("scheduler: no database")\n',
    )
    return "scheduler-dies"


def push_app_variant(box, branch: str, before: str, insert: str) -> str:
    """Push `branch`: main's app.py with `insert` put just before `before` (which must occur
    once); returns the new commit."""
    app = subprocess.run(
        ["git", "--git-dir", str(box.repo_path), "show", "main:app.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert app.count(before) == 1
    return push_branch(box.repo_path, branch, {"app.py": app.replace(before, insert + before)})


# The steps from the candidate's start to the scheduler's restart, in order.
GO_LIVE_STEPS = (
    "candidate start",
    "candidate verify",
    "switch",
    "hand-over",
    "main verify",
    "candidate stop + scheduler restart",
)

# A Procfile for the sample app (tests/sandbox/test_processes.py deploys it, with app.json).
PROCFILE = """\
# The sample app's modes as process types, plus a worker of its own.
web: python app.py ui
airflow: python app.py airflow-webserver
release: python app.py migrate
scheduler: python app.py airflow-scheduler
heartbeat: python app.py airflow-scheduler
"""


def wait_for_step(process: subprocess.Popen, moment: str) -> list[str]:
    """The lines printed up to `moment`'s (the next step is running then)."""
    lines: list[str] = []
    if moment == "start":
        return lines
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if re.match(rf"\s*\w+ +{re.escape(moment)}  ", line):
            break
    return lines


@contextmanager
def worker(box, *args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """The server's deploy worker (`python -m staging_ops.web.deploy_worker ARGS`) with the
    sandbox's environment, stopped with SIGTERM when the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "staging_ops.web.deploy_worker", *args],
        cwd=ROOT,
        env={**os.environ, **box.env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
