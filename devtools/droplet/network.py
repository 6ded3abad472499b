"""The droplet's network: a bridge of our own (host side .1, the droplet .2 on a /24 no
route on this host covers), and apt-cacher-ng bound to the bridge address, so apt inside
reaches the Debian archive without NAT. Nothing else is ever addressed."""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import json
import os
import socket
import subprocess
import time
from pathlib import Path

from devtools.droplet import base
from devtools.droplet.proc import command_line, stop_pid
from staging_ops.errors import StagingError

SUBNET_RANGE = "10.213.{}.0/24"
PROXY_PORT = 3142
PROXY_CACHE = Path("/var/cache/staging-ops/apt-cacher-ng")


def _ip(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise StagingError(f"droplet: ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def _routed() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this host routes or has an address in (the default route aside)."""
    nets: list[ipaddress.IPv4Network] = []
    for route in json.loads(_ip(["-j", "-4", "route", "show", "table", "all"]).stdout or "[]"):
        dst = route.get("dst", "default")
        if dst in ("default", "0.0.0.0/0"):
            continue
        nets.append(ipaddress.IPv4Network(dst, strict=False))
    for link in json.loads(_ip(["-j", "-4", "addr"]).stdout or "[]"):
        for addr in link.get("addr_info", []):
            nets.append(ipaddress.IPv4Network(f"{addr['local']}/{addr['prefixlen']}", False))
    return nets


def choose_subnet(seed: int) -> ipaddress.IPv4Network:
    """10.213.X.0/24 with X from the droplet dir's hash, shifted past any network in use."""
    used = _routed()
    for step in range(254):
        candidate = ipaddress.IPv4Network(SUBNET_RANGE.format((seed + step) % 254 + 1))
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise StagingError("droplet: every 10.213.X.0/24 is routed on this host already")


def link_exists(name: str) -> bool:
    return _ip(["link", "show", "dev", name], check=False).returncode == 0


def create_bridge(name: str, host_cidr: str) -> None:
    _ip(["link", "add", "name", name, "type", "bridge"])
    _ip(["addr", "add", host_cidr, "dev", name])
    _ip(["link", "set", "dev", name, "up"])


def bridge_is_ours(name: str, host_address: str) -> bool:
    """The bridge by that name carries the address we gave it (a name alone could be reused
    by someone else after we were gone)."""
    shown = _ip(["-j", "-4", "addr", "show", "dev", name], check=False)
    if shown.returncode != 0:
        return False
    for link in json.loads(shown.stdout or "[]"):
        if any(a.get("local") == host_address for a in link.get("addr_info", [])):
            return True
    return False


def delete_link(name: str) -> bool:
    return _ip(["link", "del", "dev", name], check=False).returncode == 0


# --- apt-cacher-ng -------------------------------------------------------------------------


def proxy_config(conf_dir: Path, cache: Path, bind: str, port: int) -> str:
    """A private acng.conf: our cache, log, socket and pid; bound to the bridge address only;
    the mirror named explicitly for both archives (the packaged backends answer 503 here)."""
    mirrors = base.mirrors()
    remaps = []
    for path, uri in mirrors.items():
        host_path = uri.split("://", 1)[-1]
        tag = "debrep" if path == "debian" else path.replace("-", "")
        remaps.append(f"Remap-{tag}: {host_path} /{path} ; {uri}/")
    return "\n".join(
        [
            f"CacheDir: {cache}",
            f"LogDir: {conf_dir / 'log'}",
            "SupportDir: /usr/lib/apt-cacher-ng",
            f"SocketPath: {conf_dir / 'socket'}",
            f"PidFile: {conf_dir / 'pid'}",
            f"Port: {port}",
            f"BindAddress: {bind}",
            "ConnectProto: v4",
            "ForeGround: 1",
            "ReportPage: acng-report.html",
            "ExThreshold: 4",
            *remaps,
            "",
        ]
    )


def proxy_port(bind: str, timeout: float = 5.0) -> int:
    """3142 on the bridge address, unless something bound it on every address already. Waits
    for the address to be usable (a moment after `ip addr add`, binding it can fail)."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            # As apt-cacher-ng binds: connections of a previous proxy on this address may
            # linger in TIME_WAIT (a droplet replaced after a crash gets the same address).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((bind, PROXY_PORT))
                return PROXY_PORT
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    sock.bind((bind, 0))
                    return sock.getsockname()[1]
                if time.monotonic() > deadline:
                    raise StagingError(f"droplet: cannot bind {bind}: {exc.strerror}") from None
        time.sleep(0.05)


def start_proxy(conf_dir: Path, bind: str, port: int) -> tuple[int, Path]:
    """apt-cacher-ng on bind:port as our own process; (pid, cache dir). The shared cache under
    /var/cache/staging-ops is used when no other instance holds it (an flock the process
    keeps for its whole life), else a cache of the droplet's own."""
    (conf_dir / "log").mkdir(parents=True, exist_ok=True)
    cache = PROXY_CACHE
    cache.mkdir(parents=True, exist_ok=True)
    lock = os.open(cache / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        cache = conf_dir / "cache"
        cache.mkdir(exist_ok=True)
        lock = os.open(cache / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    conf = conf_dir / "acng.conf"
    conf.write_text(proxy_config(conf_dir, cache, bind, port))
    try:
        with (conf_dir / "log" / "stdout.log").open("ab") as out:
            process = subprocess.Popen(
                ["/usr/sbin/apt-cacher-ng", "-c", str(conf_dir)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(lock,),  # the child holds the cache lock until it exits
                start_new_session=True,
            )
    finally:
        os.close(lock)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((bind, port), timeout=0.5).close()
            return process.pid, cache
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()  # not recorded yet: `down` would not find it
                process.wait()
                log = (conf_dir / "log" / "stdout.log").read_text(errors="replace")
                tail = " | ".join(log.strip().splitlines()[-3:])
                raise StagingError(
                    f"droplet: apt-cacher-ng did not listen on {bind}:{port}: {tail}"
                ) from None
            time.sleep(0.05)


def stop_proxy(pid: int, conf_dir: Path) -> bool:
    """Stops apt-cacher-ng if `pid` is still the one started with `-c conf_dir`."""
    return stop_pid(pid, lambda p: str(conf_dir) in command_line(p).split("\0"))
