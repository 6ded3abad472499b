"""SSH to a droplet with Fabric: one Connection per host, commands counted, Nagle off; hop by
hop along its route (route.py: the ssh config's jump hosts), each hop's host key checked
before logging in (known_hosts.py).

Every function that touches a host takes its Connection as an argument (no global state), so
tests hand it a sandbox connection.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import fabric
import paramiko
from fabric import Connection
from invoke.exceptions import CommandTimedOut

from staging_ops.errors import StagingError
from staging_ops.inventory import Host
from staging_ops.remote.errors import Unreachable, reason
from staging_ops.remote.known_hosts import CheckPolicy, HostKeyChanged, HostKeyRefused
from staging_ops.remote.route import Hop, Route, route

# paramiko logs refused channels (a tunnel to a closed port) itself; we report them in one line.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False
ROOT_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


# What a connection cut mid-command raises: socket errors, paramiko's, and EOFError (paramiko's
# exec_command on a transport that closed while it asked for the channel).
CONNECTION_LOST = (OSError, EOFError, paramiko.SSHException)


@dataclass
class RemoteHost:
    """A live connection to one host plus the number of remote commands it ran (the speed
    targets count them, and tests assert the counts)."""

    host: Host
    connection: Connection
    # Who we logged in as (the inventory's user, or the ssh config's when it sets none).
    user: str = ""
    # The jump hosts' connections this one rides on (closed with it).
    jumps: list[Connection] = field(default_factory=list)
    commands: int = 0
    uploads: int = 0

    @property
    def login(self) -> str:
        return self.user or self.host.user

    @property
    def sudo(self) -> bool:
        """Whether root work goes through sudo (we log in as someone other than root)."""
        return self.login != "root"

    def as_root(self, command: str) -> str:
        """`command` as root: as it is when we log in as root, else through passwordless sudo,
        keeping the session's PATH (sudo would reset it; the sandbox puts its systemctl first
        there) plus the sbin directories root's own PATH has and a user's lacks on Debian."""
        if not self.sudo:
            return command
        return f'sudo -n env PATH="$PATH:{ROOT_SBIN}" sh -c {shlex.quote(command)}'

    def run(
        self,
        command: str,
        *,
        check: bool = True,
        timeout: float | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> tuple[int, str, str]:
        """Run one shell command as root; returns (exit code, stdout, stderr). `on_line`, if
        given, also gets each line of stdout as it comes (a long step's progress)."""
        self.commands += 1
        streamed = {"hide": "err", "out_stream": _LineSink(on_line)} if on_line else {"hide": True}
        try:
            result = self.connection.run(
                self.as_root(command), warn=True, in_stream=False, timeout=timeout, **streamed
            )
        except CONNECTION_LOST as exc:
            raise Unreachable(f"{self.host.name}: connection lost: {reason(exc)}") from None
        except CommandTimedOut:
            raise Unreachable(f"{self.host.name}: no answer within {timeout:g}s") from None
        if self.sudo and result.exited != 0 and _sudo_refused(result.stderr):
            raise StagingError(
                f"{self.host.name}: user {self.login} needs root or passwordless sudo: "
                f"{_sudo_refused(result.stderr)}"
            )
        if check and result.exited != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise StagingError(
                f"{self.host.name}: command failed (exit {result.exited}): "
                f"{' | '.join(detail) or command[:80]}"
            )
        return result.exited, result.stdout, result.stderr

    def open_sftp(self) -> paramiko.SFTPClient:
        """An SFTP session with root's rights: the sftp subsystem as root, else the host's
        sftp-server started through sudo (so writes, chown and rename work the same)."""
        try:
            if not self.sudo:
                return self.connection.client.open_sftp()
            channel = self.connection.client.get_transport().open_session()
            channel.exec_command(f"sudo -n {shlex.quote(self.host.sftp_server)}")
            return paramiko.SFTPClient(channel)
        except CONNECTION_LOST as exc:
            raise StagingError(f"{self.host.name}: sftp: {reason(exc)}") from None

    def close(self) -> None:
        _close_all([*self.jumps, self.connection])


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
    """Open an SSH connection (through the ssh config's jump hosts, if any), or raise
    Unreachable within the host's connect timeout per hop; HostKeyRefused (an Unreachable) when
    a hop's key is not the known one, before anything is sent to it."""
    path = route(host)  # refuses a protected host (production)
    opened: list[Connection] = []
    try:
        for index, hop in enumerate(path.hops):
            opened.append(_open_hop(hop, _socket_to(path, index, opened), path.connect_timeout))
    except BaseException:
        _close_all(opened)
        raise
    return RemoteHost(host, opened[-1], user=path.target.user, jumps=opened[:-1])


def presented_key(path: Route) -> paramiko.PKey:
    """The key the route's last hop presents, read after the key exchange with it (nothing
    else is sent to it); the jump hosts before it are connected to and checked as usual. For
    `invoke hosts.trust`, which shows it and records it."""
    opened: list[Connection] = []
    try:
        for index, hop in enumerate(path.hops[:-1]):
            opened.append(_open_hop(hop, _socket_to(path, index, opened), path.connect_timeout))
        sock = _socket_to(path, len(path.hops) - 1, opened)
        transport = paramiko.Transport(sock)
        try:
            transport.banner_timeout = path.connect_timeout
            _prefer_known_types(transport, path.target)
            transport.start_client(timeout=path.connect_timeout)
            return transport.get_remote_server_key()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            where = path.target.label
            raise Unreachable(f"cannot reach {where}: {reason(exc)}") from None
        finally:
            transport.close()
    finally:
        _close_all(opened)


def _socket_to(path: Route, index: int, opened: list[Connection]) -> object:
    """A stream to hop `index`: our own TCP socket for the first (TCP_NODELAY on), else a
    direct-tcpip channel through the hop before it (whose own socket has it)."""
    hop = path.hops[index]
    if index == 0:
        try:
            sock = socket.create_connection((hop.hostname, hop.port), timeout=path.connect_timeout)
        except OSError as exc:
            why = exc.strerror or reason(exc)
            raise Unreachable(f"cannot reach {hop.label}: {why}") from None
        # paramiko never sets TCP_NODELAY; without it every command waits ~40 ms on delayed
        # ACKs (the hops after the first ride inside this socket).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if len(path.hops) > 1 and hasattr(socket, "TCP_QUICKACK"):
            return _QuickAck(sock)
        return sock
    before = path.hops[index - 1]
    try:
        return (
            opened[-1]
            .client.get_transport()
            .open_channel(
                "direct-tcpip",
                dest_addr=(hop.hostname, hop.port),
                src_addr=("", 0),
                timeout=path.connect_timeout,
            )
        )
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise Unreachable(
            f"cannot reach {hop.label} through {before.label}: {reason(exc)}"
        ) from None


class _QuickAck:
    """Our socket to a jump host, acknowledging at once what it receives. sshd sets
    TCP_NODELAY on the connections it makes for a forwarding, not on the one it accepted from
    us: a jump host sends the droplet's answers to us in small writes under Nagle, each held
    until we acknowledge the one before, which Linux delays up to 40 ms. Measured through a
    bastion on loopback: 52 ms per command, 13 ms with this (bench/RESULTS.md). TCP_QUICKACK
    is not sticky, hence after every read; everything else is the socket's own."""

    def __init__(self, sock: socket.socket):
        self._sock = sock

    def recv(self, size: int) -> bytes:
        data = self._sock.recv(size)
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)


def _open_hop(hop: Hop, sock: object, timeout: float) -> Connection:
    """An authenticated Fabric Connection over `sock`, once the hop's key is the expected one:
    paramiko checks it after the key exchange and before authenticating (CheckPolicy; the keys
    we know are handed to it under the name it looks up, so it asks for their type first)."""
    kwargs: dict[str, object] = {"sock": sock, "banner_timeout": timeout, "auth_timeout": timeout}
    if hop.key_files:
        kwargs["key_filename"] = list(hop.key_files)
    if hop.only_key_files:
        kwargs.update(look_for_keys=False, allow_agent=False)
    connection = Connection(
        hop.hostname,
        user=hop.user,
        port=hop.port,
        connect_timeout=timeout,
        connect_kwargs=kwargs,
        gateway=False,
        # An explicit, empty SSHConfig: Fabric loads no ssh config of its own (route.py did).
        config=fabric.Config(ssh_config=paramiko.SSHConfig()),
    )
    client = connection.client
    client.set_missing_host_key_policy(CheckPolicy(hop.expect))
    name = hop.hostname if hop.port == 22 else f"[{hop.hostname}]:{hop.port}"
    current = [k.key for k in hop.expect.known() if not k.revoked]
    types = [key.get_name() for key in current]
    # paramiko keeps one key per type and name: with two of a type (a key being rotated), it
    # would refuse the other, so then the policy judges alone (without the type preference).
    if len(set(types)) == len(types):
        for key in current:
            client.get_host_keys().add(name, key.get_name(), key)
    try:
        connection.open()
    except HostKeyRefused:
        _close_quietly(connection, sock)
        raise
    except paramiko.BadHostKeyException as exc:
        _close_quietly(connection, sock)
        refused = hop.expect.verdict(exc.key)
        raise refused or HostKeyChanged(f"{hop.label}: host key changed") from None
    except (OSError, EOFError, paramiko.SSHException) as exc:
        _close_quietly(connection, sock)
        raise Unreachable(f"cannot reach {hop.label}: {reason(exc)}") from None
    return connection


def _prefer_known_types(transport: paramiko.Transport, hop: Hop) -> None:
    """Ask for the key types we know first (as SSHClient does for known hosts)."""
    known = hop.expect.preferred_types()
    if not known:
        return
    options = transport.get_security_options()
    offered = list(options.key_types)
    wanted = [t for t in known if t in offered]
    if "ssh-rsa" in known:
        wanted = [t for t in ("rsa-sha2-512", "rsa-sha2-256") if t in offered] + wanted
    options.key_types = wanted + [t for t in offered if t not in wanted]


def _close_quietly(connection: Connection, sock: object) -> None:
    with contextlib.suppress(Exception):
        connection.client.close()
    with contextlib.suppress(Exception):
        sock.close()  # type: ignore[attr-defined]


def _close_all(opened: list[Connection]) -> None:
    """Close connections last first (a jump host's carries the ones after it)."""
    for connection in reversed(opened):
        with contextlib.suppress(Exception):
            connection.close()


def quote(*parts: str) -> str:
    return " ".join(shlex.quote(p) for p in parts)
