"""Airflow's local-settings hook, as the failure branches ship it: one Airflow command crashes.

Every ``airflow`` command imports ``airflow_local_settings`` at start from its plugins folder
(``AIRFLOW__CORE__PLUGINS_FOLDER``, the release's ``plugins/``), the hook real deployments use
for cluster policies. Here it makes the process running ``airflow CRASH_COMMAND`` exit 1,
CRASH_AFTER_SECONDS after the process started (0: at once, before it listens or logs
anything; counted from the process's start, not from this import, which comes ~1 s in). Every
other command (``airflow db migrate`` in the release phase, the other processes) is untouched.
devtools/campaign_repo.py sets the two constants per branch.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

CRASH_COMMAND = "webserver"
CRASH_AFTER_SECONDS = 0.0


def _seconds_since_start() -> float:
    """How long this process has run (the kernel's start time against its uptime)."""
    stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    started_ticks = int(stat[19])  # field 22 of proc(5), counted after the command name
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - started_ticks / os.sysconf("SC_CLK_TCK")


def _crash() -> None:
    print(f"airflow {CRASH_COMMAND}: crashed (failure branch)", file=sys.stderr, flush=True)
    # A real crash leaves forked helpers (DAG processor, executor workers, log server) to
    # systemd's cgroup kill; do not rely on one here. psutil comes with Airflow; without it
    # (the hook run outside Airflow) there are no Airflow children to reap.
    try:
        import psutil
    except ImportError:
        children = []
    else:
        children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    os._exit(1)


if sys.argv[1:2] == [CRASH_COMMAND]:
    if CRASH_AFTER_SECONDS <= 0:
        _crash()
    else:
        timer = threading.Timer(max(0.0, CRASH_AFTER_SECONDS - _seconds_since_start()), _crash)
        timer.daemon = True
        timer.start()
