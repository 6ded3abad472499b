"""The Staging API + Dashboard as a background process on the sandbox's registry."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from devtools.sandbox.processes import sandbox_command
from devtools.sandbox.state import Sandbox
from staging_ops.errors import StagingError

PROJECT = Path(__file__).resolve().parents[2]


def start_deploy_worker(sandbox: Sandbox, name: str = "deploy-worker") -> int:
    """A deploy worker (staging_ops.web.deploy_worker) beside the dashboard, in the
    environment `up` runs in (STAGING_GITHUB_* and STAGING_LINEAR_* included) plus the
    sandbox's; its PID is recorded as `name` so `down` stops it."""
    log = sandbox.path / f"{name}.log"
    command = [sys.executable, "-m", "staging_ops.web.deploy_worker"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=PROJECT,
            env={**os.environ, **sandbox.env()},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sandbox.pids[name] = process.pid
    sandbox.save()
    return process.pid


def start_dashboard(sandbox: Sandbox, port: int, timeout: float = 15.0) -> None:
    """The Staging API and Dashboard on 127.0.0.1:`port`, a background process on the sandbox's
    registry and inventory; its PID is recorded so `down` stops it."""
    log = sandbox.path / "dashboard.log"
    command = [sys.executable, "-m", "staging_ops.web", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            sandbox_command(sandbox, command),
            cwd=PROJECT,  # so `-m` finds staging_ops from any directory
            env={**os.environ, **sandbox.env()},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives `invoke sandbox.up`, like the other services
        )
    sandbox.pids["dashboard"] = process.pid
    sandbox.save()
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
                raise StagingError(
                    f"sandbox: the dashboard did not start on :{port}: {tail}"
                ) from None
            time.sleep(0.05)
