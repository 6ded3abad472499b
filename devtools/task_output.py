"""What the sandbox and droplet tasks print alike: how to reach what `up` started, and the
state of the processes that `status` reports."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from staging_ops import output


def print_started(
    json: bool, status: Callable[[], dict[str, Any]], reach: Iterable[str], env_path: Path
) -> None:
    """The end of an `up`: the status as JSON, or how to reach each part and the settings
    file to source."""
    if json:
        print(output.to_json(status()))
        return
    for line in reach:
        print(f"  {line}")
    print(f"  settings: source {env_path}")


def print_processes(state: dict[str, Any]) -> None:
    for name, alive in state["processes"].items():
        print(f"  {name:<16} {'running' if alive else 'stopped'}")
