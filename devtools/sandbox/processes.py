"""Running the sandbox's commands and recognising its processes: a PID counts as the
sandbox's only while the process names the sandbox (PIDs are reused)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import socket
import subprocess
import time
from pathlib import Path

from devtools import cgroups
from devtools.sandbox.state import Sandbox, SandboxHost
from staging_ops.errors import StagingError


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        command = shlex.join(cgroups.unwrapped(args)[:3])
        raise StagingError(f"sandbox: {command} failed: {' | '.join(detail)}")
    return result


def sandbox_command(sandbox: Sandbox, args: list[str]) -> list[str]:
    """`args`, to be run in the sandbox's cgroup (when this machine let `up` make one): then
    it and everything it starts, over SSH too, is the sandbox's whatever it renames itself to
    (`down` stops every member)."""
    return cgroups.member_command(sandbox.cgroup, args)


def as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def wait_for_file(path: Path, timeout: float = 5.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path
        time.sleep(0.01)
    raise StagingError(f"sandbox: {path} did not appear within {timeout:.0f}s")


def wait_listening(sandbox: Sandbox, timeout: float = 5.0) -> None:
    targets = [sandbox.pg_port] + [h.ssh_port for h in sandbox.hosts]
    deadline = time.monotonic() + timeout
    for port in targets:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise StagingError(f"sandbox: nothing listens on 127.0.0.1:{port}") from None
                time.sleep(0.02)


def unit_pids(host: SandboxHost) -> dict[str, int]:
    """PIDs of the services the systemctl stand-in started on this host, from the status files
    it keeps (`run/<unit>.status` with `MainPID=`)."""
    found: dict[str, int] = {}
    for status_file in host.root.glob("run/*.service.status"):
        for line in status_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "MainPID" and value.strip().isdigit():
                found[status_file.name.removesuffix(".service.status")] = int(value)
    return found


def alive(pid: int, sandbox: Sandbox) -> bool:
    """True when `pid` runs and is still ours. PIDs are reused (after a crash, a reboot, or
    just a wrapped PID counter), and `down` re-reads them from state.json and the units' status
    files, so a PID counts only if the process names the sandbox:
    - its command line names a path inside the sandbox directory (postgres -D, nginx -p,
      sshd -f, the slot units' ExecStart under srv/staging); or, for those whose does not,
    - the dashboard (`python -m staging_ops.web`) or a deploy worker: its environment's
      STAGING_INVENTORY is the sandbox's inventory;
    - a unit the systemctl stand-in started: its environment's PATH has a sandbox host's bin
      directory (the sandbox sshd sets it for the session; the stand-in and its services
      inherit it); or
    - its working directory is inside the sandbox (a slot's process that rewrote its command
      line and environment: gunicorn). An operator's shell that sourced DIR/env matches none,
      unless it works inside the sandbox directory."""
    proc = Path(f"/proc/{pid}")
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False
    # (NULs separate the arguments; nginx and sshd rewrite their titles into one spaced string.)
    if names_path_inside(sandbox.dir).search(cmdline):
        return True
    # A process that rewrote its title and environment (gunicorn's setproctitle) still works
    # in its release's directory, inside the sandbox.
    with contextlib.suppress(OSError):
        if names_path_inside(sandbox.dir).search(" " + os.readlink(proc / "cwd") + "/"):
            return True
    try:
        raw = (proc / "environ").read_bytes().decode(errors="replace")
    except OSError:
        return False
    environ = dict(entry.partition("=")[::2] for entry in raw.split("\0") if "=" in entry)
    if any(w.split(".")[:2] == ["staging_ops", "web"] for w in cmdline.split()):
        return environ.get("STAGING_INVENTORY") == str(sandbox.inventory_path)
    host_bins = {str(Path(h.dir) / "bin") for h in sandbox.hosts}
    return not host_bins.isdisjoint(environ.get("PATH", "").split(":"))


def names_path_inside(directory: str) -> re.Pattern[str]:
    """Finds a path inside `directory` in a command line: as a word of its own or an option's
    value (`--root=DIR/...`). With a path boundary on both sides: /tmp/sbx/x is inside
    /tmp/sbx; /tmp/sbx3/x and /a/tmp/sbx/x are not."""
    return re.compile(r"(?:^|[\s=:'\"])" + re.escape(directory.rstrip("/") + "/"))
