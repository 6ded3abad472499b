"""Who is asking: the operator's name, as claims, deploys and the lock record it."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping

from staging_ops.errors import BadInput
from staging_ops.slots.model import parse_text


def default_owner(env: Mapping[str, str] | None = None) -> str:
    """`git config user.email`, then $USER; BadInput if neither is known."""
    env = os.environ if env is None else env
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "config", "user.email"], capture_output=True, text=True, timeout=5, check=False
        )
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    user = env.get("USER") or env.get("LOGNAME")
    if user:
        return user
    raise BadInput("cannot tell who you are: pass --owner (or set git user.email or $USER)")


def owner_or_default(value: str | None) -> str:
    return parse_text(value, "owner") or default_owner()
