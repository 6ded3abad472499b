"""Extra OpenSSH servers beside the sandbox's, for the host-key and ssh-config tests: an
impostor (another host key on a host's address), a copy of a sandbox host's sshd inside a
network namespace of its own (reachable only through a jump host), and a bastion sshd run
per connection inside that namespace. Each is stopped by the PID it was started with."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from devtools import envfile

SSHD = "/usr/sbin/sshd"


def fingerprint_of(public_key: Path) -> str:
    """OpenSSH's own SHA256 fingerprint of a public key file (ssh-keygen -lf), so the tests
    check our fingerprints against ssh's, not against themselves."""
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(public_key)], capture_output=True, text=True, check=True
    ).stdout
    return out.split()[1]


def new_host_key(directory: Path, name: str) -> Path:
    """A fresh ed25519 host key (its .pub beside it)."""
    key = directory / name
    envfile.ssh_keygen(key, f"test-{name}", "test")
    return key


def config_like(
    sandbox, directory: Path, name: str, port: int, host_key: Path, *extra: str
) -> Path:
    """The sandbox host h1's sshd_config (its authorized keys, PATH, HOME) on another port,
    with another host key and PID file, logging at DEBUG (channels, forwardings)."""
    text = (Path(sandbox.hosts[0].dir) / "sshd_config").read_text()
    text = re.sub(r"(?m)^Port .*$", f"Port {port}", text)
    text = re.sub(r"(?m)^HostKey .*$", f"HostKey {host_key}", text)
    text = re.sub(r"(?m)^PidFile .*$", f"PidFile {directory / (name + '.pid')}", text)
    text += "LogLevel DEBUG3\n" + "".join(line + "\n" for line in extra)
    config = directory / f"{name}_config"
    config.write_text(text)
    return config


@dataclass
class Sshd:
    """A daemon sshd started by a test: its log and PID."""

    log: Path
    pid: int

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def _wait_pid(path: Path, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.01)
    raise AssertionError(f"{path} did not appear")


@contextlib.contextmanager
def daemon_sshd(config: Path, log: Path, prefix: tuple[str, ...] = ()) -> Iterator[Sshd]:
    """sshd -f CONFIG as a daemon (optionally through `prefix`, e.g. nsenter); stopped by the
    PID its PID file names."""
    name = config.name.removesuffix("_config")
    pid_file = config.parent / f"{name}.pid"
    pid_file.unlink(missing_ok=True)
    subprocess.run([*prefix, SSHD, "-f", str(config), "-E", str(log)], check=True)
    server = Sshd(log, _wait_pid(pid_file))
    try:
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGTERM)


@dataclass
class Namespace:
    """A network namespace of its own (only its loopback, up), held by one sleeping process."""

    holder: subprocess.Popen

    @property
    def enter(self) -> tuple[str, ...]:
        return ("nsenter", f"--net=/proc/{self.holder.pid}/ns/net", "--")


@contextlib.contextmanager
def network_namespace() -> Iterator[Namespace]:
    holder = subprocess.Popen(["unshare", "--net", "sleep", "3600"])
    try:
        namespace = Namespace(holder)
        deadline = time.monotonic() + 5
        while True:  # until unshare has exec'd sleep inside the new namespace
            mine = os.readlink("/proc/self/ns/net")
            if os.readlink(f"/proc/{holder.pid}/ns/net") != mine:
                break
            assert time.monotonic() < deadline, "unshare --net did not take"
            time.sleep(0.01)
        subprocess.run([*namespace.enter, "ip", "link", "set", "lo", "up"], check=True)
        yield namespace
    finally:
        holder.kill()
        holder.wait()


@dataclass
class InetdSshd:
    """An sshd per connection (`sshd -i`, as inetd runs it) for each client accepted on
    127.0.0.1:port, started through `prefix`: a bastion that lives in another namespace."""

    port: int
    log: Path
    children: list[subprocess.Popen] = field(default_factory=list)

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@contextlib.contextmanager
def inetd_sshd(config: Path, log: Path, port: int, prefix: tuple[str, ...]) -> Iterator[InetdSshd]:
    listener = socket.create_server(("127.0.0.1", port))
    server = InetdSshd(port, log)

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: the test is over
            with client:
                server.children.append(
                    subprocess.Popen(
                        [*prefix, SSHD, "-i", "-f", str(config), "-E", str(log)],
                        stdin=client.fileno(),
                        stdout=client.fileno(),
                        stderr=subprocess.DEVNULL,
                    )
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        # shutdown wakes the accept() the thread waits in (close alone does not on Linux).
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=5)
        for child in server.children:
            if child.poll() is None:
                child.terminate()
            child.wait(timeout=10)
