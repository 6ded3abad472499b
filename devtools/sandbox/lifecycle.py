"""`up`, `down` and `status`: the order a sandbox is built in, and taken apart."""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
from pathlib import Path

from devtools import cgroups, envfile
from devtools.sandbox import api_server, host_root, inventory, postgres, sshd, stopping
from devtools.sandbox.processes import alive, unit_pids, wait_listening
from devtools.sandbox.state import Ports, Sandbox, SandboxHost, load
from staging_ops.errors import BadInput, StagingError


def up(
    directory: str | Path = ".sandbox",
    hosts: int = 1,
    slots: int = 10,
    ports: Ports | None = None,
    dashboard: bool = False,
) -> Sandbox:
    """Build and start a sandbox in `directory`, first stopping and deleting a stale one
    there (a directory that is neither a sandbox nor empty is refused, untouched, and nothing
    is deleted until the ports are known to be free); with `dashboard`, also the Staging API
    + Dashboard on 127.0.0.1:`ports.dashboard`."""
    if not 1 <= hosts <= 20:
        raise BadInput(f"--hosts must be between 1 and 20, not {hosts}")
    if not 1 <= slots <= 500:
        raise BadInput(f"--slots must be between 1 and 500, not {slots}")
    ports = ports or Ports()
    path = Path(directory).resolve()
    envfile.check_replaceable(path, "sandbox", load)
    down(path)
    sandbox = Sandbox(
        dir=str(path),
        pg_port=ports.postgres,
        slot_port_offset=ports.slot_offset,
        slots=slots,
        hosts=[
            SandboxHost(
                f"h{i}", ports.ssh(i), ports.http(i), ports.https(i), str(path / "hosts" / f"h{i}")
            )
            for i in range(1, hosts + 1)
        ],
        dashboard_port=ports.dashboard if dashboard else None,
        api_jwt_secret=secrets.token_urlsafe(32) if dashboard else "",
        github_webhook_secret=secrets.token_hex(32) if dashboard else "",
        linear_webhook_secret=secrets.token_hex(32) if dashboard else "",
    )
    _check_ports_free(sandbox)  # before deleting anything: a failed `up` leaves all as it was
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    sandbox.save()  # early, so `down` can clean up after a failure half-way
    # Everything started from here on runs in it (processes.sandbox_command), and `down` stops
    # all of it; without one (not root) `down` goes by the recorded PIDs and their trees alone.
    cgroups.create(sandbox.cgroup)
    try:
        sshd.make_keys(sandbox)
        host_root.make_certificate(sandbox)
        postgres.start(sandbox)
        for host in sandbox.hosts:
            host_root.make_host_root(sandbox, host)
            host_root.start_nginx(sandbox, host)
            sshd.start_sshd(sandbox, host)
        from devtools.sample_repo import build_sample_repo

        build_sample_repo(sandbox.repo_path)
        inventory.write_inventory(sandbox)
        inventory.write_env(sandbox)
        wait_listening(sandbox)
        if sandbox.dashboard_port:
            api_server.start_dashboard(sandbox, sandbox.dashboard_port)
            api_server.start_deploy_worker(sandbox)
    except BaseException:
        sandbox.save()
        down(path)
        raise
    sandbox.save()
    return sandbox


def down(directory: str | Path = ".sandbox") -> list[str]:
    """Stop every process the sandbox started and wait until they are gone: first each by its
    recorded PID (PostgreSQL, nginx, sshd, the dashboard with its workers, the units), so each
    stops as it should; then whatever is still in the sandbox's cgroup, whatever it renamed
    itself to or was reparented to (a gunicorn started over SSH). Returns what was stopped."""
    sandbox = load(directory)
    if sandbox is None:
        return []
    pids = dict(sandbox.pids)
    for host in sandbox.hosts:
        pids.update({f"{host.name}:{unit}": pid for unit, pid in unit_pids(host).items()})
    stopped = stopping.stop(_stop_target(name, pid, sandbox) for name, pid in pids.items())
    left = cgroups.pids(sandbox.cgroup)
    if left:
        stopping.stop([stopping.Target("cgroup", lambda: cgroups.pids(sandbox.cgroup))])
        cgroups.kill(sandbox.cgroup)  # also any forked after the last look
        stopped.append(f"{len(left)} leftover processes")
    sandbox.pids = {}
    sandbox.save()
    if cgroups.remove(sandbox.cgroup):
        raise StagingError(f"sandbox: cgroup {sandbox.cgroup} still has processes after SIGKILL")
    return stopped


def _stop_target(name: str, pid: int, sandbox: Sandbox) -> stopping.Target:
    if name == "postgres":
        # PostgreSQL's SIGTERM is a smart shutdown: it waits for every client to leave. SIGINT
        # is its fast shutdown: clients are disconnected, the cluster shut down cleanly.
        return stopping.Target(name, lambda: _ours([pid], sandbox), signal.SIGINT)
    if name == "dashboard":
        from staging_ops.web.server import WORKERS_KILL_TIMEOUT

        # The server leads a process group of its own (start_new_session) with its granian
        # workers in it: each is stopped too, even one its parent left behind, and the server
        # gets the time it gives its workers itself before it kills them.
        return stopping.Target(
            name,
            lambda: _ours([pid, *stopping.process_group(pid)], sandbox),
            timeout=WORKERS_KILL_TIMEOUT + stopping.STOP_TIMEOUT,
        )
    if ":" in name:
        # A slot unit: its whole tree (the runner's shell, the app and its workers), each
        # still checked to be ours: gunicorn rewrites its command line and environment, but
        # its working directory is its release's, inside the sandbox (processes.alive).
        return stopping.Target(name, lambda: _ours([pid, *stopping.descendants(pid)], sandbox))
    return stopping.Target(name, lambda: _ours([pid], sandbox))


def _ours(pids: list[int], sandbox: Sandbox) -> list[int]:
    return [pid for pid in dict.fromkeys(pids) if alive(pid, sandbox)]


def status(directory: str | Path = ".sandbox") -> dict[str, object]:
    sandbox = load(directory)
    if sandbox is None:
        return {"dir": str(Path(directory).resolve()), "up": False, "processes": {}}
    processes = {name: alive(pid, sandbox) for name, pid in sandbox.pids.items()}
    return {
        "dir": sandbox.dir,
        "up": bool(processes) and all(processes.values()),
        "processes": processes,
        "postgres": f"127.0.0.1:{sandbox.pg_port}",
        "hosts": [
            {
                "name": h.name,
                "ssh": f"127.0.0.1:{h.ssh_port}",
                "http": h.http_port,
                "https": h.https_port,
                "units": sorted(unit_pids(h)),
            }
            for h in sandbox.hosts
        ],
        "inventory": str(sandbox.inventory_path),
        "env": str(sandbox.env_path),
    }


def _check_ports_free(sandbox: Sandbox) -> None:
    wanted = [sandbox.pg_port] + ([sandbox.dashboard_port] if sandbox.dashboard_port else [])
    for h in sandbox.hosts:
        wanted += [h.ssh_port, h.http_port, h.https_port]
    for port in wanted:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                raise BadInput(
                    f"sandbox: port 127.0.0.1:{port} is in use "
                    "(another sandbox? choose other ports)"
                ) from None
