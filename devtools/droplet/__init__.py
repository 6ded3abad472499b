"""A real, fresh Debian 12 droplet on this machine: systemd as PID 1 in systemd-nspawn, its
own network namespace and address on a bridge of ours, real SSH on port 22, apt through our
own apt-cacher-ng, and a registry PostgreSQL on the host; `source DIR/env` points the
toolkit's tasks at it.

    up(directory, name="d1") -> Droplet     down(directory) -> list[str]
    status(directory) -> dict               reboot(droplet) -> float
    run(droplet, command) -> CompletedProcess   can_boot() -> str | None

Everything is recorded in DIR/state.json; `down` stops and removes exactly what `up`
created (processes by recorded PID whose command line names the dir, the droplet's own
cgroups, its bridge if it still carries our address) and nothing else.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from devtools import envfile
from devtools.droplet import acme as acme_mod
from devtools.droplet import base, machine, network, proc
from devtools.droplet import env as env_mod
from devtools.droplet.env import STATE_FILE, Droplet, dir_hash, load, write_inventory
from staging_ops.errors import BadInput, StagingError
from staging_ops.output import StepLog

__all__ = [
    "Droplet",
    "can_boot",
    "down",
    "load",
    "reboot",
    "run",
    "status",
    "up",
    "write_inventory",
]

BOOT_TIMEOUT = 90.0
ACME_SERVERS = ("", "pebble")
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# A path inside the droplet a host directory may be mounted at: absolute, plain characters
# (nspawn's --bind-ro takes ':' as its separator), never the system's own directories.
BIND_RE = re.compile(r"^/(?:srv|opt|mnt)/[A-Za-z0-9_.@+/-]+$")


def can_boot() -> str | None:
    """None when this machine can boot droplets, else one line saying why not."""
    if os.geteuid() != 0:
        return "droplets need root (overlay mounts, bridges, systemd-nspawn)"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter", "ip", "mount"):
        if not shutil.which(tool):
            return f"{tool} is not installed (scripts/setup.sh installs it)"
    if not Path("/usr/sbin/apt-cacher-ng").exists():
        return "apt-cacher-ng is not installed (scripts/setup.sh installs it)"
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return "no PostgreSQL server in /usr/lib/postgresql (scripts/setup.sh installs one)"
    filesystems = Path("/proc/filesystems").read_text().split()
    if "overlay" not in filesystems:
        return "the kernel has no overlayfs (no 'overlay' in /proc/filesystems)"
    for root in proc.CGROUP_ROOTS:
        if not (root / "cgroup.procs").exists() or not os.access(root, os.W_OK):
            return f"{root} is not a writable cgroup hierarchy (needs hybrid cgroups)"
    try:
        base.mirrors()
    except StagingError as exc:
        return str(exc)
    return None


def up(
    directory: str | Path = ".droplet",
    name: str = "d1",
    log: StepLog | None = None,
    acme: str = "",
    repo: Path | None = None,
    binds: dict[Path, str] | None = None,
) -> Droplet:
    """(Re)create the droplet environment in `directory`: a stale droplet there is cleaned up
    first; a directory that is neither empty nor a droplet's is refused untouched. With
    `acme="pebble"`, a local ACME server runs in the droplet's network namespace and the
    inventory asks provision-all to get certificates from it.

    + repo: a bare repository to serve instead of the sample app's (e.g. the campaign app's,
      devtools.campaign_repo): copied into DIR/repo/, mounted and named by the inventory as the
      sample's would be (its [app] commands stay the sample app's: write your own for it);
    + binds: host directories mounted read-only in the droplet, {host dir: path inside under
      /srv, /opt or /mnt} (e.g. a wheelhouse at /srv/wheelhouse, devtools.wheelhouse).
    """
    log = log or StepLog(quiet=True)
    if not NAME_RE.match(name):
        raise BadInput(f"--name must be lower-case letters, digits and '-', not {name!r}")
    if acme not in ACME_SERVERS:
        raise BadInput(f"--acme must be one of {', '.join(repr(a) for a in ACME_SERVERS)}")
    if repo is not None and not (Path(repo) / "HEAD").is_file():
        raise BadInput(f"droplet: {repo} is not a bare git repository (no HEAD)")
    mounts = _checked_binds(binds or {})
    path = Path(directory).resolve()
    envfile.check_replaceable(path, "droplet", load)
    reason = can_boot()
    if reason:
        raise StagingError(f"droplet: this machine cannot boot droplets: {reason}")
    with log.step("clean up the previous droplet") as step:
        stopped = down(path)
        step.detail = ", ".join(stopped) if stopped else "none"
        base.remove_tree(path)
        path.mkdir(parents=True)
        path.chmod(0o755)  # the postgres user traverses it to its data directory
    h = dir_hash(path)
    droplet = Droplet(
        dir=str(path),
        name=name,
        machine=f"sod{h}",
        cgroup=f"staging-droplet-{h}",
        subnet="",
        host_address="",
        address="",
        pg_port=_free_port(),
        proxy_port=network.PROXY_PORT,
        acme=acme,
        repo_name=Path(repo).resolve().name if repo is not None else "sample-app.git",
        binds=mounts,
    )
    droplet.save()  # early, so `down` can clean up after a failure half-way
    try:
        _build(droplet, log, Path(repo).resolve() if repo is not None else None)
    except BaseException:
        droplet.save()
        down(path)
        raise
    droplet.save()
    return droplet


def _checked_binds(binds: dict[Path, str]) -> dict[str, str]:
    """{host dir: path inside} as state.json keeps it; a missing host dir or a path inside
    that is not a plain one under /srv, /opt or /mnt is refused before anything starts."""
    checked: dict[str, str] = {}
    for host, inside in binds.items():
        source = Path(host).resolve()
        if not source.is_dir() or ":" in str(source) or "," in str(source):
            raise BadInput(f"droplet: bind source {host} is not a directory nspawn can mount")
        if not BIND_RE.match(inside) or ".." in inside.split("/"):
            raise BadInput(
                f"droplet: bind target {inside!r} must be a plain path under /srv, /opt or /mnt"
            )
        checked[str(source)] = inside.rstrip("/")
    return checked


def _build(droplet: Droplet, log: StepLog, repo: Path | None = None) -> None:
    with log.step("base image") as step:
        start = time.monotonic()
        base_root, built = base.ensure_base(
            lambda line: log.emit(f"  … base: {line} ({time.monotonic() - start:.0f}s)")
        )
        droplet.base = str(base_root)
        step.detail = f"{'built' if built else 'cached'} {base_root.parent.name}"
    with log.step("keys and repository") as step:
        public_key = env_mod.make_keys(droplet)
        if repo is None:
            from devtools.sample_repo import build_sample_repo

            branches = len(build_sample_repo(droplet.repo_path))
        else:
            # A copy: the droplet's mount never shows the rest of the directory it came from.
            shutil.copytree(repo, droplet.repo_path, symlinks=True)
            branches = len(_branches(droplet.repo_path))
        step.detail = f"{droplet.repo_name}, {branches} branches"
    with log.step("bridge") as step:
        subnet = network.choose_subnet(int(dir_hash(droplet.path)[:4], 16))
        hosts = list(subnet.hosts())
        droplet.subnet, droplet.host_address, droplet.address = (
            str(subnet),
            str(hosts[0]),
            str(hosts[1]),
        )
        if network.link_exists(droplet.bridge):
            raise StagingError(f"droplet: a link named {droplet.bridge} exists and is not ours")
        droplet.bridge_created = True
        droplet.save()
        network.create_bridge(droplet.bridge, f"{droplet.host_address}/{subnet.prefixlen}")
        step.detail = f"{droplet.bridge} {droplet.host_address}/{subnet.prefixlen}"
    with log.step("apt proxy (apt-cacher-ng)") as step:
        droplet.proxy_port = network.proxy_port(droplet.host_address)
        pid, cache = network.start_proxy(
            droplet.proxy_dir, droplet.host_address, droplet.proxy_port
        )
        droplet.pids["apt-cacher-ng"], droplet.proxy_cache = pid, str(cache)
        droplet.save()
        step.detail = f"{droplet.proxy_url} cache {cache}"
    with log.step("registry PostgreSQL") as step:
        from devtools.sandbox import start_postgres

        def record(pid: int) -> None:
            droplet.pids["postgres"] = pid
            droplet.save()

        start_postgres(droplet.pg_dir, droplet.pg_port, on_started=record)
        step.detail = f"127.0.0.1:{droplet.pg_port}/{env_mod.REGISTRY_DB}"
    layout = droplet.layout
    with log.step("overlay and metadata"):
        machine.mount_overlay(layout, Path(droplet.base))
        machine.write_metadata(
            layout.root,
            hostname=droplet.name,
            address=droplet.address,
            prefix=int(droplet.subnet.split("/")[1]),
            authorized_key=public_key,
            proxy=droplet.proxy_url,
        )
    with log.step("boot (systemd-nspawn)") as step:
        args = machine.nspawn_args(
            layout, droplet.machine, droplet.bridge, droplet.repo_dir, droplet.binds
        )
        machine.write_launcher(layout, droplet.cgroup, args)
        droplet.pids["launcher"] = machine.launch(layout, droplet.cgroup)
        droplet.save()
        init = machine.wait_init(droplet.pids["launcher"], BOOT_TIMEOUT)
        state, failed = machine.wait_running(init, BOOT_TIMEOUT)
        step.detail = state + (f" (failed: {', '.join(failed)})" if failed else "")
        if failed:
            step.outcome = "warn"
    with log.step("ssh") as step:
        machine.wait_ssh(droplet.address, 30)
        _record_host_keys(droplet)
        step.detail = f"root@{droplet.address}:22, host keys in {droplet.known_hosts_path}"
    if droplet.acme:
        with log.step("ACME server (pebble)") as step:
            acme_mod.prepare(droplet.path, layout.root)
            _start_acme(droplet)
            step.detail = f"{acme_mod.DIRECTORY_URL} inside the droplet"
    with log.step("inventory and env"):
        write_inventory(droplet)
        env_mod.write_env(droplet)


def _record_host_keys(droplet: Droplet) -> None:
    """The host keys the droplet generated at its first boot, read from its disk (not learnt
    over the network), into the known_hosts file its inventory names: connections then check
    them as they check a real droplet's."""
    keys = sorted((droplet.layout.root / "etc/ssh").glob("ssh_host_*_key.pub"))
    if not keys:
        raise StagingError("droplet: sshd answers but no /etc/ssh/ssh_host_*_key.pub exists")
    envfile.write_known_hosts(
        droplet.known_hosts_path, [(droplet.address, key.read_text()) for key in keys]
    )


def down(directory: str | Path = ".droplet") -> list[str]:
    """Stop and remove everything the droplet in `directory` created; returns what it
    stopped or removed. The dir's files stay (up deletes them)."""
    path = Path(directory).resolve()
    droplet = _load_or_refuse(path)
    if droplet is None:
        return []
    # First: they hold the droplet's network namespace (and its veth) while they run.
    done: list[str] = acme_mod.stop(droplet.path, droplet.pids)
    done += machine.stop(droplet.pids.get("launcher"), droplet.layout, droplet.cgroup)
    if machine.unmount(droplet.layout):
        done.append("overlay")
    left = proc.remove_cgroups(droplet.cgroup)
    if left:
        raise StagingError(f"droplet: cgroup {left[0]} is still in use")
    if droplet.bridge_created:
        # nspawn's veth goes with the container's network namespace; one left behind by a
        # crash is removed by its name, which is ours.
        if network.link_exists(droplet.veth) and network.delete_link(droplet.veth):
            done.append(droplet.veth)
        if network.bridge_is_ours(droplet.bridge, droplet.host_address):
            network.delete_link(droplet.bridge)
            done.append(f"bridge {droplet.bridge}")
    proxy = droplet.pids.get("apt-cacher-ng")
    if proxy and network.stop_proxy(proxy, droplet.proxy_dir):
        done.append("apt-cacher-ng")
    pg = droplet.pids.get("postgres")
    data = str(droplet.pg_dir / "data")
    # SIGINT is PostgreSQL's fast shutdown: open clients do not hold `down` up.
    if pg and proc.stop_pid(
        pg, lambda p: data in proc.command_line(p).split("\0"), signal.SIGINT, timeout=10
    ):
        done.append("postgres")
    propagate = Path("/run/systemd/nspawn/propagate") / droplet.machine
    if propagate.is_dir():
        shutil.rmtree(propagate, ignore_errors=True)
    droplet.pids = {}
    droplet.bridge_created = False
    droplet.save()
    return done


def status(directory: str | Path = ".droplet") -> dict[str, Any]:
    path = Path(directory).resolve()
    droplet = _load_or_refuse(path)
    if droplet is None:
        return {"dir": str(path), "up": False, "processes": {}}
    launcher = droplet.pids.get("launcher")
    running = bool(launcher) and machine.is_launcher(launcher, droplet.layout)
    init = machine.container_init(launcher) if running and launcher else None
    processes = {
        "droplet": running,
        "apt-cacher-ng": bool(droplet.pids.get("apt-cacher-ng"))
        and str(droplet.proxy_dir) in proc.command_line(droplet.pids["apt-cacher-ng"]).split("\0"),
        "postgres": bool(droplet.pids.get("postgres"))
        and str(droplet.pg_dir / "data") in proc.command_line(droplet.pids["postgres"]).split("\0"),
    }
    system = ""
    if init:
        result = subprocess.run(
            machine.nsenter(init, ["systemctl", "is-system-running"]),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        system = result.stdout.strip()
    return {
        "dir": droplet.dir,
        "name": droplet.name,
        "up": all(processes.values()) and system in ("running", "degraded"),
        "system": system or "down",
        "processes": processes,
        "address": droplet.address,
        "ssh": f"root@{droplet.address}:22",
        "bridge": droplet.bridge,
        "apt_proxy": droplet.proxy_url,
        "postgres": f"127.0.0.1:{droplet.pg_port}",
        "base": droplet.base,
        "inventory": str(droplet.inventory_path),
        "env": str(droplet.env_path),
    }


def run(
    droplet: Droplet, command: list[str] | str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a command inside the droplet as root (nsenter into its namespaces); a string is
    run by /bin/sh. Does not raise on a non-zero exit."""
    args = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    return subprocess.run(
        machine.nsenter(_init(droplet), args),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def reboot(droplet: Droplet, timeout: float = BOOT_TIMEOUT) -> float:
    """`systemctl reboot` inside; waits until the new boot has settled and SSH answers at the
    same address. Returns the seconds it took."""
    start = time.monotonic()
    old = _init(droplet)
    run(droplet, ["systemctl", "reboot"], timeout=30)
    launcher = droplet.pids["launcher"]
    deadline = time.monotonic() + timeout
    while proc.alive(old) and time.monotonic() < deadline:
        time.sleep(0.02)
    init = machine.wait_init(launcher, max(1.0, deadline - time.monotonic()), not_pid=old)
    machine.wait_running(init, max(1.0, deadline - time.monotonic()))
    machine.wait_ssh(droplet.address, max(1.0, deadline - time.monotonic()))
    if droplet.acme:
        # The old network namespace went with the old boot: the ACME server follows.
        acme_mod.stop(droplet.path, droplet.pids)
        _start_acme(droplet)
    return time.monotonic() - start


def _start_acme(droplet: Droplet) -> None:
    droplet.pids.update(acme_mod.start(droplet.path, _init(droplet)))
    droplet.save()


def _init(droplet: Droplet) -> int:
    launcher = droplet.pids.get("launcher")
    init = machine.container_init(launcher) if launcher else None
    if not init or not machine.is_launcher(launcher or 0, droplet.layout):
        raise StagingError(f"droplet: {droplet.name} in {droplet.dir} is not running")
    return init


def _branches(repo: Path) -> list[str]:
    result = subprocess.run(
        ["git", "--git-dir", str(repo), "for-each-ref", "--format=%(refname)", "refs/heads"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _load_or_refuse(path: Path) -> Droplet | None:
    try:
        return load(path)
    except (OSError, ValueError, TypeError, KeyError):
        raise BadInput(f"droplet: {path / STATE_FILE} is not a droplet's") from None
