"""Where a host's SSH connection goes: the inventory's host with the operator's ssh config
applied (~/.ssh/config, or the file STAGING_SSH_CONFIG names), as a list of hops (the jump
hosts of ProxyJump, then the host), each with the key it must present.

Precedence, per setting (README, "Host keys and the ssh config"):
- the inventory `address` is the name looked up in the ssh config (its `Host` alias); the
  ssh config's HostName, if any, is where the connection goes;
- `user`, `port`, `key_file` and `connect_timeout` set in the host's table win; the ssh
  config's User, Port, IdentityFile (IdentitiesOnly) and ConnectTimeout fill those the table
  leaves out; then the inventory's defaults (root, 22, the agent and default keys, 10 s);
- ProxyJump (one hop or several, comma-separated) comes from the ssh config only; each jump
  host is looked up there too (its HostName, User, Port, IdentityFile; its own ProxyJump is
  not followed: list every hop in the host's ProxyJump);
- the host key: the inventory's `host_key` (a pinned fingerprint), else the keys of its
  `known_hosts` file, else of the ssh config's UserKnownHostsFile, else ~/.ssh/known_hosts
  (HostKeyAlias names the entry); a jump host's key is looked for in the same file.
ProxyCommand is refused (exit 2): its command would decide where we connect and could not
keep TCP_NODELAY; StrictHostKeyChecking is ignored (checking is never weakened).

Pure apart from reading the ssh config file: no connection is opened here."""

from __future__ import annotations

import getpass
import glob
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import paramiko

from staging_ops.errors import BadInput
from staging_ops.inventory import Host, is_production
from staging_ops.remote.known_hosts import DEFAULT_KNOWN_HOSTS, Expectation, known_name

SSH_CONFIG_ENV = "STAGING_SSH_CONFIG"
DEFAULT_SSH_CONFIG = "~/.ssh/config"
# `[user@]host[:port]`, `[user@][v6 address][:port]`, or the same as ssh://…
_JUMP = re.compile(
    r"^(?:ssh://)?(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[^\]\s]+)\]|(?P<host>[^:@\s\[\]]+))"
    r"(?::(?P<port>\d+))?$"
)


@dataclass(frozen=True)
class Hop:
    """One SSH connection of a route: where, as whom, with which keys, expecting which host key."""

    hostname: str
    port: int
    user: str
    key_files: tuple[str, ...]
    # Only these keys: no agent, no ~/.ssh/id_* (the inventory's key_file, IdentitiesOnly).
    only_key_files: bool
    expect: Expectation

    @property
    def label(self) -> str:
        return self.expect.label


@dataclass(frozen=True)
class Route:
    """A host's hops, jump hosts first, the host itself last, and the timeout of each step."""

    host: Host
    hops: tuple[Hop, ...]
    connect_timeout: float

    @property
    def target(self) -> Hop:
        return self.hops[-1]


def ssh_config_path() -> tuple[Path, bool]:
    """The ssh config file and whether the operator named it (STAGING_SSH_CONFIG: then it
    must exist)."""
    named = os.environ.get(SSH_CONFIG_ENV)
    return Path(os.path.expanduser(named or DEFAULT_SSH_CONFIG)), bool(named)


_parsed: dict[tuple[Path, int, int], paramiko.SSHConfig] = {}
_parsed_lock = threading.Lock()


def load_ssh_config() -> tuple[paramiko.SSHConfig, Path]:
    """The operator's ssh config, parsed once per process while the file stays the same; an
    empty one when the default file does not exist."""
    path, named = ssh_config_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        if named:
            raise BadInput(f"{SSH_CONFIG_ENV}: {path}: no such file") from None
        return paramiko.SSHConfig(), path
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the ssh config: {exc.strerror}") from None
    stamp = (path, stat.st_mtime_ns, stat.st_size)
    with _parsed_lock:
        found = _parsed.get(stamp)
    if found is None:
        try:
            found = paramiko.SSHConfig.from_text(_with_includes(path, 0))
        except (OSError, UnicodeDecodeError, paramiko.ssh_exception.ConfigParseError) as exc:
            raise BadInput(f"{path}: cannot read the ssh config: {exc}") from None
        with _parsed_lock:
            _parsed[stamp] = found
    return found, path


_INCLUDE = re.compile(r"^\s*include\s+(.+?)\s*$", re.IGNORECASE)


def _with_includes(path: Path, depth: int) -> str:
    """The file's text with each `Include` replaced by the files it names (globs; relative to
    ~/.ssh, as ssh reads them): paramiko would keep it as an unknown option and silently miss
    what the included files set. Not cached separately: a change of an included file alone
    is seen by the next process."""
    if depth > 16:
        raise BadInput(f"{path}: Include nested more than 16 deep")
    lines = []
    for line in path.read_text().splitlines():
        match = _INCLUDE.match(line)
        if not match:
            lines.append(line)
            continue
        for pattern in match.group(1).split():
            pattern = os.path.expanduser(pattern)
            if not os.path.isabs(pattern):
                pattern = os.path.join(os.path.expanduser("~/.ssh"), pattern)
            for included in sorted(glob.glob(pattern)):
                lines.append(_with_includes(Path(included), depth + 1))
    return "\n".join(lines) + "\n"


def route(
    host: Host, config: paramiko.SSHConfig | None = None, source: Path | None = None
) -> Route:
    """The hops to `host` (BadInput, exit 2, for a protected host or an ssh config we cannot
    follow)."""
    if host.protected:
        raise BadInput(f"host {host.name} ({host.address}) is protected: never connected to")
    if config is None:
        config, source = load_ssh_config()
    where = str(source or "ssh config")
    options = _lookup(config, host.address, where)
    given = host.set_in_inventory
    hostname = options.get("hostname", host.address)
    port = host.port if "port" in given else _port(options, host.port, host.address, where)
    user = host.user if "user" in given else options.get("user", host.user)
    if "key_file" in given and host.key_file:
        key_files, only = (host.key_file,), True
    else:
        key_files = _identity_files(options)
        only = options.get("identitiesonly", "no").lower() == "yes"
    timeout = host.connect_timeout
    if "connect_timeout" not in given and "connecttimeout" in options:
        timeout = float(_number(options["connecttimeout"], "ConnectTimeout", host.address, where))
    known_hosts = _known_hosts_file(host, options)
    if "proxycommand" in options and "proxyjump" not in options:
        raise BadInput(
            f"{where}: ProxyCommand for {host.address!r} is not supported: use ProxyJump"
        )
    target = Hop(
        hostname,
        port,
        user,
        key_files,
        only,
        Expectation(
            label=f"{host.name} ({hostname}:{port})",
            host_name=host.name,
            name=known_name(hostname, port, options.get("hostkeyalias")),
            path=known_hosts,
            pin=host.host_key,
        ),
    )
    jumps = _jumps(config, options.get("proxyjump", "none"), host, known_hosts, where)
    hops = (*jumps, target)
    for hop in hops:
        if is_production(hop.hostname):
            raise BadInput(f"{where}: {hop.label} is production's address: never connected to")
    return Route(host, hops, timeout)


def _lookup(config: paramiko.SSHConfig, alias: str, where: str) -> dict:
    try:
        return dict(config.lookup(alias))
    except Exception as exc:  # Match exec and canonicalization raise a variety of errors
        raise BadInput(f"{where}: looking up {alias!r}: {exc}") from None


def _jumps(
    config: paramiko.SSHConfig, value: str, host: Host, known_hosts: Path, where: str
) -> list[Hop]:
    if value.strip().lower() == "none":
        return []
    hops = []
    for spec in value.split(","):
        match = _JUMP.match(spec.strip())
        if not match:
            raise BadInput(
                f"{where}: ProxyJump for {host.address!r}: {spec!r} is not [user@]host[:port]"
            )
        alias = match.group("v6") or match.group("host")
        options = _lookup(config, alias, where)
        if "proxycommand" in options and "proxyjump" not in options:
            raise BadInput(
                f"{where}: ProxyCommand for jump host {alias!r} is not supported: use ProxyJump"
            )
        hostname = options.get("hostname", alias)
        port = int(match.group("port")) if match.group("port") else _port(options, 22, alias, where)
        user = match.group("user") or options.get("user") or getpass.getuser()
        hops.append(
            Hop(
                hostname,
                port,
                user,
                _identity_files(options),
                options.get("identitiesonly", "no").lower() == "yes",
                Expectation(
                    label=f"jump host {alias} ({hostname}:{port}) for {host.name}",
                    host_name=host.name,
                    name=known_name(hostname, port, options.get("hostkeyalias")),
                    path=known_hosts,
                ),
            )
        )
    return hops


def _known_hosts_file(host: Host, options: dict) -> Path:
    if host.known_hosts:
        return Path(host.known_hosts)
    files = options.get("userknownhostsfile", "").split()
    return Path(os.path.expanduser(files[0] if files else DEFAULT_KNOWN_HOSTS))


def _identity_files(options: dict) -> tuple[str, ...]:
    return tuple(os.path.expanduser(f) for f in options.get("identityfile", []))


def _number(value: str, name: str, alias: str, where: str) -> int:
    if not value.isdigit():
        raise BadInput(f"{where}: {name} {value!r} for {alias!r} is not a number")
    return int(value)


def _port(options: dict, default: int, alias: str, where: str) -> int:
    if "port" not in options:
        return default
    port = _number(options["port"], "Port", alias, where)
    if not 1 <= port <= 65535:
        raise BadInput(f"{where}: Port {port} for {alias!r} is not a TCP port")
    return port
