"""SSH to a droplet with Fabric: one Connection per host, commands counted, Nagle off.

Every function that touches a host takes its Connection as an argument (no global state), so
tests hand it a sandbox connection.
"""

from __future__ import annotations

import logging
import shlex
import socket
from collections.abc import Callable
from dataclasses import dataclass

import paramiko
from fabric import Connection
from invoke.exceptions import CommandTimedOut

from staging_ops.errors import BadInput, StagingError
from staging_ops.inventory import Host

# paramiko logs refused channels (a tunnel to a closed port) itself; we report them in one line.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False
ROOT_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


class Unreachable(StagingError):
    """A host that cannot be reached; the message says which and why."""


@dataclass
class RemoteHost:
    """A live connection to one host plus the number of remote commands it ran (the speed
    targets count them, and tests assert the counts)."""

    host: Host
    connection: Connection
    commands: int = 0
    uploads: int = 0

    @property
    def sudo(self) -> bool:
        """Whether root work goes through sudo (we log in as someone other than root)."""
        return self.host.user != "root"

    def as_root(self, command: str) -> str:
        """`command` as root: as it is when we log in as root, else through passwordless sudo,
        keeping the session's PATH (sudo would reset it; the sandbox puts its systemctl first
        there) plus the sbin directories root's own PATH has and a user's lacks on Debian."""
        if not self.sudo:
            return command
        return f'sudo -n env PATH="$PATH:{ROOT_SBIN}" sh -c {shlex.quote(command)}'

    def run(
        self, command: str, *, check: bool = True, timeout: float | None = None
    ) -> tuple[int, str, str]:
        """Run one shell command as root; returns (exit code, stdout, stderr)."""
        self.commands += 1
        try:
            result = self.connection.run(
                self.as_root(command), hide=True, warn=True, in_stream=False, timeout=timeout
            )
        except (OSError, paramiko.SSHException) as exc:
            raise Unreachable(f"{self.host.name}: connection lost: {exc}") from None
        except CommandTimedOut:
            raise Unreachable(f"{self.host.name}: no answer within {timeout:g}s") from None
        if self.sudo and result.exited != 0 and _sudo_refused(result.stderr):
            raise StagingError(
                f"{self.host.name}: user {self.host.user} needs root or passwordless sudo: "
                f"{_sudo_refused(result.stderr)}"
            )
        if check and result.exited != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise StagingError(
                f"{self.host.name}: command failed (exit {result.exited}): "
                f"{' | '.join(detail) or command[:80]}"
            )
        return result.exited, result.stdout, result.stderr

    def run_streaming(self, command: str, on_line: Callable[[str], None]) -> str:
        """Run one shell command as root, handing each line of its output to `on_line` as it
        comes (progress of a long step); its stdout, or StagingError naming the last lines."""
        self.commands += 1
        lines = _LineSink(on_line)
        try:
            result = self.connection.run(
                self.as_root(command), hide="err", warn=True, in_stream=False, out_stream=lines
            )
        except (OSError, paramiko.SSHException) as exc:
            raise Unreachable(f"{self.host.name}: connection lost: {exc}") from None
        if result.exited != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise StagingError(
                f"{self.host.name}: command failed (exit {result.exited}): {' | '.join(detail)}"
            )
        return result.stdout

    def open_sftp(self) -> paramiko.SFTPClient:
        """An SFTP session with root's rights: the sftp subsystem as root, else the host's
        sftp-server started through sudo (so writes, chown and rename work the same)."""
        try:
            if not self.sudo:
                return self.connection.client.open_sftp()
            channel = self.connection.client.get_transport().open_session()
            channel.exec_command(f"sudo -n {shlex.quote(self.host.sftp_server)}")
            return paramiko.SFTPClient(channel)
        except (OSError, paramiko.SSHException) as exc:
            raise StagingError(f"{self.host.name}: sftp: {exc or type(exc).__name__}") from None

    def close(self) -> None:
        self.connection.close()


class _LineSink:
    """A write-only stream that hands complete lines to a callback."""

    def __init__(self, on_line: Callable[[str], None]):
        self._on_line = on_line
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        for line in complete:
            self._on_line(line.rstrip("\r"))
        return len(text)

    def flush(self) -> None:
        pass


def _sudo_refused(stderr: str) -> str:
    """sudo's own complaint (no sudo, a password required, not allowed), or ''."""
    for line in stderr.splitlines():
        if (
            line.startswith("sudo:")
            or "sudo: not found" in line
            or "sudo: command not found" in line
        ):
            return line.strip()
    return ""


def connect(host: Host) -> RemoteHost:
    """Open an SSH connection, or raise Unreachable within the host's connect timeout."""
    if host.protected:
        raise BadInput(f"host {host.name} ({host.address}) is protected: never connected to")
    where = f"{host.name} ({host.address}:{host.port})"
    try:
        sock = socket.create_connection((host.address, host.port), timeout=host.connect_timeout)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise Unreachable(f"cannot reach {where}: {reason}") from None
    # paramiko never sets TCP_NODELAY; without it every command waits ~40 ms on delayed ACKs.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    kwargs: dict[str, object] = {
        "sock": sock,
        "banner_timeout": host.connect_timeout,
        "auth_timeout": host.connect_timeout,
    }
    if host.key_file:
        kwargs.update(key_filename=host.key_file, look_for_keys=False, allow_agent=False)
    connection = Connection(
        host.address,
        user=host.user,
        port=host.port,
        connect_timeout=host.connect_timeout,
        connect_kwargs=kwargs,
    )
    try:
        connection.open()
    except (OSError, paramiko.SSHException) as exc:
        sock.close()
        raise Unreachable(f"cannot reach {where}: {exc or type(exc).__name__}") from None
    return RemoteHost(host, connection)


def quote(*parts: str) -> str:
    return " ".join(shlex.quote(p) for p in parts)
