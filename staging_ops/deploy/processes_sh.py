"""Remote script deploy-processes.sh's command, its arguments named as its usage header says:
the slot's worker units enabled at boot become exactly the kept ones (handover.py after a
go-live, stop.py with none kept). Its answer is its exit code only."""

from __future__ import annotations

from staging_ops.remote.scripts import home, script_command

SCRIPT = "deploy-processes.sh"


@home(SCRIPT)
def command(systemd_dir: str, worker_prefix: str, n: int, *units: str) -> str:
    """Keep the first `n` of `units` (KEEP_UNITs) enabled, stop and disable the slot's other
    workers, stop the rest of `units` (STOP_UNITs)."""
    return script_command(SCRIPT, systemd_dir, worker_prefix, n, *units)
