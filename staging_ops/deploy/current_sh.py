"""Remote script slot-current.sh in one place: its verbs' commands (arguments named as its
usage header says) and the reader of `read`'s answer. Pure: switch.py, release.py, stop.py and
listing.py run them."""

from __future__ import annotations

from staging_ops.remote.scripts import home, script_command

SCRIPT = "slot-current.sh"


@home(SCRIPT, "set")
def set_command(current: str, release: str) -> str:
    """CURRENT -> releases/RELEASE, atomically."""
    return script_command(SCRIPT, "set", current, release)


@home(SCRIPT, "clear")
def clear_command(current: str) -> str:
    """No CURRENT: the slot has no release to serve."""
    return script_command(SCRIPT, "clear", current)


@home(SCRIPT, "read")
def read_command(current: str) -> str:
    """Where CURRENT points (parse_read reads it)."""
    return script_command(SCRIPT, "read", current)


@home(SCRIPT, "stop")
def stop_command(current: str, *units: str) -> str:
    """Stop the slot's `units`, then clear CURRENT."""
    return script_command(SCRIPT, "stop", current, *units)


@home(SCRIPT, "discard")
def discard_command(partial: str) -> str:
    """Remove a release directory an export left half made."""
    return script_command(SCRIPT, "discard", partial)


def parse_read(out: str) -> str | None:
    """`read`'s answer (the link's target, `releases/NAME`, or nothing) -> NAME or None."""
    target = out.strip()
    return target.rsplit("/", 1)[-1] if target else None
