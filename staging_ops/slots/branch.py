"""Which branch names a deploy accepts, and the Linear task a branch is named after."""

from __future__ import annotations

import re
import subprocess

from staging_ops.errors import BadInput
from staging_ops.slots.model import parse_branch

LINEAR_KEY = re.compile(r"(?i)(?:^|[^a-z0-9])([a-z][a-z0-9]*-[0-9]+)(?:[^0-9]|$)")


def validate_branch(branch: str) -> str:
    """Our safe characters (the branch goes into .release-env, which sh sources), then git's
    own rules (`git check-ref-format --branch`); never an option."""
    if not branch or branch.startswith("-"):
        raise BadInput(f"invalid branch name {branch!r}")
    parse_branch(branch)
    result = subprocess.run(
        ["git", "check-ref-format", "--branch", branch], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or result.stdout.strip() != branch:
        raise BadInput(f"invalid branch name {branch!r} (git check-ref-format --branch refuses it)")
    return branch


def task_from_branch(branch: str) -> str | None:
    """`alice/ja-123-search` -> `JA-123`."""
    match = LINEAR_KEY.search(branch)
    return match.group(1).upper() if match else None
