"""What every task shares: error handling, the inventory, the operator's name."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import Exit

from staging_ops import inventory as inv
from staging_ops.errors import BadInput, StagingError


def operator_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn StagingError into one line on stderr and its exit code; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StagingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise Exit(code=130) from None

    return wrapper


def project_root(c: Any) -> Path:
    """The checkout tasks.py lives in (tasks.py puts it in the config as staging.root)."""
    config = c.config.get("staging", {}) or {}
    return Path(config.get("root") or ".")


def load(c: Any) -> inv.Inventory:
    """The inventory: STAGING_INVENTORY, then config staging.inventory, then the checkout's."""
    config = c.config.get("staging", {}) or {}
    default = project_root(c) / inv.DEFAULT_INVENTORY
    return inv.load_inventory(inv.inventory_path(config.get("inventory"), default))


def operator(owner: str) -> str:
    """Who runs the command: --owner, then git config user.email, then $USER."""
    from staging_ops.slots.owner import owner_or_default

    return owner_or_default(owner or None)


def stderr_line(line: str) -> None:
    """Progress and notices go to stderr, so stdout stays the result (and --json one document)."""
    print(line, file=sys.stderr, flush=True)


def require_slot_credentials(hosts: list[inv.Host], hint: str = "") -> None:
    """Before a command checks slots through nginx: STAGING_SLOT_CREDENTIALS well formed, and
    set when one of `hosts` has `access = "password"` (else every check would be a 401).
    BadInput (exit 2) otherwise, nothing touched yet; never a password in the message."""
    from staging_ops import slot_access

    problem = slot_access.missing_credentials(hosts)
    if problem:
        raise BadInput(problem + hint)
