"""Deploying the sample app's branches to a slot of a sandbox and reading what it serves: the
helpers the deploy modules share (the slot is always the caller's, from tests/sandbox/slots.py)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from devtools import deploys
from devtools.sample_repo import resolve
from staging_ops.health import public_version
from staging_ops.inventory import load_inventory


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
