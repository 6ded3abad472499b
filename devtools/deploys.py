"""`invoke deploy` of a branch to a sandbox's slot, as an operator runs it (for the slot's
task, JA-<slot>, which claims it): how the sandbox tests and the bench scripts deploy."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INVOKE = str(Path(sys.executable).parent / "invoke")


def deploy_args(slot: int, branch: str, *extra: str) -> list[str]:
    """The task's arguments: the slot's own task, so a free slot is claimed for it."""
    return ["deploy", "--slot", str(slot), "--branch", branch, "--task", f"JA-{slot}", *extra]


def run_deploy(
    env: Mapping[str, str], slot: int, branch: str, *extra: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Runs the deploy from the project root with `env` over this process's environment; its
    exit code is the caller's to judge."""
    return subprocess.run(
        [INVOKE, *deploy_args(slot, branch, *extra)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_deploy(env: Mapping[str, str], slot: int, branch: str, *extra: str) -> subprocess.Popen:
    """The deploy in the background, for a caller that watches its steps or signals it: its
    output on pipes, as text, unbuffered so each step line arrives when it is printed."""
    return subprocess.Popen(
        [INVOKE, *deploy_args(slot, branch, *extra)],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
