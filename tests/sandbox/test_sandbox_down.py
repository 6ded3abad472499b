"""`sandbox.down` leaves nothing of the sandbox running: the dashboard's granian workers
included, even one its server left behind, and never a process that is not the sandbox's.

A worker that outlived `down` kept serving the dashboard's port (SO_REUSEPORT) for good: the
dashboard test failed about one run in four that way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devtools import sandbox as sandbox_mod
from devtools.sandbox import stopping
from staging_ops.web.server import ensure_port_free
from tests.conftest import free_port, sandbox_ports
from tests.sandbox.test_api_server import wait_for


def sandbox_processes(directory: Path) -> list[str]:
    """'PID command line' of every running process (but this one) whose command line or
    environment names `directory` or a path inside it."""
    marker = str(directory).encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if proc.name == str(os.getpid()) or not stopping.running(int(proc.name)):
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        for blob in (cmdline, environ):
            if any(marker + end in blob + b"\0" for end in (b"/", b"\0")):
                command = cmdline.replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{proc.name} {command}")
                break
    return found


def test_down_right_after_up_leaves_nothing_of_the_dashboard() -> None:
    """`down` at once after `up`, while the server's second worker may still be building its
    app (the moment a SIGTERM used to be lost on it): nothing names the sandbox any more, and
    the dashboard's port is free."""
    directory = Path(tempfile.mkdtemp(prefix="staging-ops-sbx-down-"))
    directory.chmod(0o755)
    ports = sandbox_ports(600)
    try:
        box = sandbox_mod.up(directory, slots=1, ports=ports, dashboard=True)
        assert box.pids["dashboard"]
        assert "dashboard" in sandbox_mod.down(directory)
        assert sandbox_processes(directory) == []
        ensure_port_free("127.0.0.1", ports.dashboard)
    finally:
        sandbox_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)


# The dashboard's process group, as a server killed mid-stop leaves it: a leader that ends on
# SIGTERM, a worker of the sandbox still listening on the port (it outlives the leader), and a
# process in the group that is not the sandbox's (another inventory).
GROUP = """
import os, socket, sys, time

port = int(sys.argv[3])
if os.fork() == 0:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    time.sleep(60)
elif os.fork() == 0:
    os.environ["STAGING_INVENTORY"] = "/elsewhere/inventory.toml"
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)", "-m", "staging_ops.web"]
    os.execve(sys.executable, sleeper, os.environ)
else:
    time.sleep(60)
"""


def test_down_stops_the_dashboards_whole_process_group_but_only_what_is_ours(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "sbx"
    port = free_port()
    host = sandbox_mod.SandboxHost("h1", 1, 2, 3, str(directory / "hosts" / "h1"))
    box = sandbox_mod.Sandbox(
        dir=str(directory), pg_port=4, slot_port_offset=0, slots=1, hosts=[host]
    )
    box.dashboard_port = port
    directory.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGING_")}
    leader = subprocess.Popen(
        [sys.executable, "-c", GROUP, "-m", "staging_ops.web", str(port)],
        env={**env, "STAGING_INVENTORY": str(box.inventory_path)},
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: len(stopping.process_group(leader.pid)) == 3 and _listening(port))
        time.sleep(0.2)  # let the stranger exec its command line and environment
        members = set(stopping.process_group(leader.pid)) - {leader.pid}
        (worker,) = [pid for pid in members if sandbox_mod._alive(pid, box)]
        (stranger,) = members - {worker}
        box.pids = {"dashboard": leader.pid}
        box.save()
        assert sandbox_mod.down(directory) == ["dashboard"]
        assert leader.wait(5) == -signal.SIGTERM
        assert not stopping.running(worker)
        assert stopping.running(stranger)
        ensure_port_free("127.0.0.1", port)
        assert sandbox_processes(directory) == []
    finally:
        for pid in stopping.process_group(leader.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        leader.kill()
        leader.wait()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True
