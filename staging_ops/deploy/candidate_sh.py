"""Remote script deploy-candidate.sh in one place: its verbs' commands, arguments named as its
usage header says. Its answer is its exit code (and the failing unit's message). Pure:
candidate.py runs them."""

from __future__ import annotations

from staging_ops.remote.scripts import home, script_command

SCRIPT = "deploy-candidate.sh"


@home(SCRIPT, "start")
def start_command(root: str, release: str, n: int, *units: str) -> str:
    """Point ROOT/candidate at releases/RELEASE and start the first `n` of `units` (the
    release's port types); every one of `units` is stopped first if a candidate is left."""
    return script_command(SCRIPT, "start", root, release, n, *units)


@home(SCRIPT, "stop")
def stop_command(root: str, release: str, n: int, *units: str) -> str:
    """Stop every one of `units` and remove ROOT/candidate (RELEASE and N are not read)."""
    return script_command(SCRIPT, "stop", root, release, n, *units)
