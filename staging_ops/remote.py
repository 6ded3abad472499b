"""SSH to a droplet with Fabric: one Connection per host, commands counted, Nagle off.

Every function that touches a host takes its Connection as an argument (no global state), so
tests hand it a sandbox connection.
"""

from __future__ import annotations

import shlex
import socket
from dataclasses import dataclass, field

import paramiko
from fabric import Connection

from staging_ops.errors import BadInput, StagingError
from staging_ops.inventory import Host


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
    log: list[str] = field(default_factory=list)

    def run(
        self,
        command: str,
        *,
        check: bool = True,
        stdin: str | None = None,
        timeout: float | None = None,
    ) -> tuple[int, str, str]:
        """Run one shell command; returns (exit code, stdout, stderr)."""
        self.commands += 1
        self.log.append(command)
        try:
            result = self.connection.run(
                command,
                hide=True,
                warn=True,
                in_stream=False if stdin is None else _StringIn(stdin),
                timeout=timeout,
            )
        except (OSError, paramiko.SSHException) as exc:
            raise Unreachable(f"{self.host.name}: connection lost: {exc}") from None
        if check and result.exited != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise StagingError(
                f"{self.host.name}: command failed (exit {result.exited}): "
                f"{' | '.join(detail) or command[:80]}"
            )
        return result.exited, result.stdout, result.stderr

    def close(self) -> None:
        self.connection.close()


class _StringIn:
    """A file-like stdin for Fabric's run()."""

    def __init__(self, text: str):
        self._data = text.encode()

    def read(self, n: int) -> bytes:
        chunk, self._data = self._data[:n], self._data[n:]
        return chunk


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


__all__ = ["RemoteHost", "Unreachable", "connect", "quote"]
