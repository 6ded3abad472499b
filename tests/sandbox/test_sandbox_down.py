"""`sandbox.down` leaves nothing of the sandbox running: the dashboard's granian workers
included, even one its server left behind, a gunicorn that renamed itself and left the process
tree it was started from, and never a process that is not the sandbox's.

A worker that outlived `down` kept serving the dashboard's port (SO_REUSEPORT) for good: the
dashboard test failed about one run in four that way.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from devtools import cgroups
from devtools import sandbox as sandbox_mod
from devtools.sandbox import processes, stopping
from staging_ops.inventory import load_inventory
from staging_ops.remote import connect
from staging_ops.web.server import ensure_port_free
from tests.conftest import free_port, sandbox_ports
from tests.sandbox.api_server import wait_for


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


WSGI_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with a real gunicorn and setproctitle (with which gunicorn renames itself, as in
    the Campaign UI's venv), from the configured package index; its gunicorn."""
    venv = tmp_path_factory.mktemp("gunicorn") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    installed = subprocess.run(
        [*pip, "gunicorn", "setproctitle"], capture_output=True, text=True, timeout=300
    )
    if installed.returncode != 0:
        pytest.skip(f"gunicorn is not installable here: {installed.stderr.strip()[-200:]}")
    return venv / "bin" / "gunicorn"


def test_down_stops_a_gunicorn_that_renamed_itself_and_left_the_tree(
    gunicorn: Path, tmp_path: Path
) -> None:
    """A gunicorn daemon started over the sandbox's SSH, as a deploy would start a slot's app:
    it double-forks away from the session (its parent is no process of ours), rewrites its
    command line and environment, and works outside the sandbox directory, so neither the
    recorded PIDs' trees nor anything a process says about itself finds it. The sandbox's
    cgroup does: after `down` no process of it runs, by PID."""
    directory = Path(tempfile.mkdtemp(prefix="staging-ops-sbx-gunicorn-"))
    directory.chmod(0o755)
    app, port = tmp_path / "app", free_port()
    app.mkdir()
    (app / "wsgi_app.py").write_text(WSGI_APP)
    pid_file = app / "gunicorn.pid"
    found: list[int] = []
    try:
        box = sandbox_mod.up(directory, slots=1, ports=sandbox_ports(800))
        if not cgroups.top_dirs(box.cgroup):
            pytest.skip("this machine gives the sandbox no cgroup (not root?)")
        remote = connect(load_inventory(box.inventory_path).hosts["h1"])
        try:
            daemon = [str(gunicorn), "--daemon", "--workers", "2", "--pid", str(pid_file)]
            bind = ["--bind", f"127.0.0.1:{port}", "wsgi_app:app"]
            remote.run(f"cd {shlex.quote(str(app))} && {shlex.join(daemon + bind)}")
        finally:
            remote.close()
        wait_for(lambda: pid_file.exists() and _listening(port), timeout=30)
        master = int(pid_file.read_text())
        wait_for(lambda: len(_children(master)) == 2, timeout=30)
        found = [master, *_children(master)]
        title = Path(f"/proc/{master}/cmdline").read_bytes()
        assert title.startswith(b"gunicorn: master"), title  # renamed: no path, no venv
        assert _parent(master) not in {*box.pids.values(), os.getpid()}
        assert not any(sandbox_mod._alive(pid, box) for pid in found)  # nothing says "ours"
        assert set(found) <= set(cgroups.pids(box.cgroup))

        stopped = sandbox_mod.down(directory)

        assert stopped[-1].endswith(" leftover processes"), stopped  # gunicorn's at least
        assert [pid for pid in found if stopping.running(pid)] == []
        ensure_port_free("127.0.0.1", port)
        assert cgroups.top_dirs(box.cgroup) == []
        assert sandbox_processes(directory) == []
    finally:
        sandbox_mod.down(directory)
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(directory, ignore_errors=True)


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()


def _parent(pid: int) -> int:
    return int(_stat(pid)[1])


def _children(pid: int) -> list[int]:
    return [child for child in stopping.descendants(pid) if _parent(child) == pid]


def test_a_command_joins_the_cgroup_with_its_arguments_intact_and_is_named_by_them() -> None:
    name = f"staging-ops-test-{os.getpid()}"
    if cgroups.create(name) is None:
        pytest.skip("no writable cgroup hierarchy here (not root?)")
    try:
        words = ["a b; touch /tmp/never", "--", "$HOME", "'"]
        probe = "import os, sys; print(open('/proc/self/cgroup').read()); print(sys.argv[1:])"
        shown = subprocess.run(
            cgroups.member_command(name, [sys.executable, "-c", probe, *words]),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"/{name}\n" in shown
        assert shown.endswith(f"{words}\n")
        with pytest.raises(sandbox_mod.StagingError, match=r"^sandbox: false 'no such' failed"):
            processes.run(cgroups.member_command(name, ["false", "no such"]))
    finally:
        assert cgroups.remove(name) == []
