"""Which host key each host must present: OpenSSH known_hosts files read (and appended to by
`invoke hosts.trust`), a fingerprint pinned in the inventory, and the one-line refusals.

Our own reader rather than paramiko's HostKeys.load: that one decodes every key of the file
and compares each line with all the lines before it (quadratic in a long known_hosts); here
only the lines naming the host we connect to are decoded, so the check costs next to
nothing per connection (bench/RESULTS.md)."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry, InvalidHostKey

from staging_ops.remote.errors import Unreachable

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


class HostKeyRefused(Unreachable):
    """A host whose key is not the one we know (or no key is known): nothing was sent to it,
    not even a user name. Exit 1, as a host not reached: the refusal is only learnt by
    contacting the network, possibly after other hosts of the same run were changed."""


class UnknownHostKey(HostKeyRefused):
    """No key known for the host: the operator checks the fingerprint and trusts it."""

    def __init__(self, message: str, key: paramiko.PKey, expect: Expectation):
        super().__init__(message)
        self.key = key
        self.expect = expect


class HostKeyChanged(HostKeyRefused):
    """The host presents another key than the one known: never trusted, never overwritten."""


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint (`ssh-keygen -lf`): SHA256:base64 without padding."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_name(hostname: str, port: int, alias: str | None = None) -> str:
    """The name a host's key is filed under, as OpenSSH writes it: HostKeyAlias as it is,
    else the host name, in brackets with the port when it is not 22."""
    if alias:
        return alias
    return hostname if port == 22 else f"[{hostname}]:{port}"


@dataclass(frozen=True)
class KnownKey:
    """One key a known_hosts file files under our host's name, and where (for the messages)."""

    key: paramiko.PKey
    path: Path
    line: int
    revoked: bool = False


def _names_match(name: str, field: str) -> bool:
    """Whether a known_hosts line's host field covers `name`: a hashed name (|1|salt|hash), or
    comma-separated patterns with * and ? where a matching !pattern excludes the line."""
    if field.startswith("|1|"):
        try:
            salt, digest = (base64.b64decode(part) for part in field[3:].split("|", 1))
        except (binascii.Error, ValueError):
            return False
        mine = hmac.new(salt, name.encode(), hashlib.sha1).digest()
        return hmac.compare_digest(mine, digest)
    matched = False
    for pattern in field.split(","):
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!")
        hit = pattern == name or (
            any(c in pattern for c in "*?") and fnmatch.fnmatchcase(name, pattern)
        )
        if hit and negated:
            return False
        matched = matched or hit
    return matched


Stamp = tuple[Path, int, int]  # a file's path, mtime and size: one version of it
_cache: dict[Stamp, list[tuple[int, str, str]]] = {}
_cache_lock = threading.Lock()


def _lines(path: Path) -> tuple[Stamp | None, list[tuple[int, str, str]]]:
    """The file's version and the (line number, marker, rest of the line) of its entries;
    (None, []) when there is no such file. Cached per process while the file's size and time
    stay the same (provision-all connects to every host from threads of one process)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None, []
    except OSError as exc:
        raise Unreachable(f"{path}: cannot read known hosts: {exc.strerror}") from None
    stamp = (path, stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        found = _cache.get(stamp)
    if found is not None:
        return stamp, found
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise Unreachable(f"{path}: cannot read known hosts: {exc.strerror}") from None
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        marker = ""
        if line.startswith("@"):
            marker, _, line = line.partition(" ")
            line = line.lstrip()
        entries.append((number, marker, line))
    with _cache_lock:
        _cache[stamp] = entries
    return stamp, entries


_found: dict[tuple[Stamp, str], list[KnownKey]] = {}


def known_keys(path: Path, name: str) -> list[KnownKey]:
    """The keys `path` files under `name` (revoked ones marked); @cert-authority lines are
    skipped (we trust no host certificates), as are lines paramiko cannot decode. Kept per
    version of the file and name: a hashed line costs an HMAC per name looked up."""
    stamp, entries = _lines(path)
    if stamp is None:
        return []
    key = (stamp, name)
    with _cache_lock:
        found = _found.get(key)
    if found is None:
        found = _matching(path, entries, name)
        with _cache_lock:
            _found[key] = found
    return found


def _matching(path: Path, entries: list[tuple[int, str, str]], name: str) -> list[KnownKey]:
    found = []
    for number, marker, line in entries:
        if marker not in ("", "@revoked"):
            continue
        field = line.split(None, 1)[0]
        if not _names_match(name, field):
            continue
        try:
            entry = HostKeyEntry.from_line(line, number)
        except (paramiko.SSHException, InvalidHostKey, ValueError, binascii.Error):
            entry = None
        if entry is not None and entry.key is not None:
            found.append(KnownKey(entry.key, path, number, marker == "@revoked"))
    return found


def record(path: Path, name: str, key: paramiko.PKey) -> None:
    """Append `name keytype base64` to the known_hosts file (created 0600, its directory 0700
    when it does not exist yet, as ssh does with ~/.ssh). Never rewrites a line: a changed key
    is refused before this is called, and the operator removes the old line himself."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = f"{name} {key.get_name()} {key.get_base64()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as out:
        if out.tell() > 0 and not path.read_bytes().endswith(b"\n"):
            out.write("\n")
        out.write(line)


@dataclass(frozen=True)
class Expectation:
    """What one hop's key must be: a fingerprint pinned in the inventory, else the keys its
    known_hosts file files under its name."""

    label: str  # "h1 (127.0.0.1:22201)" or "jump host bastion (…) for h1"
    host_name: str  # the inventory host, for the trust command
    name: str  # the known_hosts name
    path: Path  # the known_hosts file (read, and written by hosts.trust)
    pin: str | None = None  # "SHA256:…" from the inventory's host_key

    def known(self) -> list[KnownKey]:
        return [] if self.pin else known_keys(self.path, self.name)

    def preferred_types(self) -> list[str]:
        """Key types to ask the server for first: those we know (as ssh's
        HostKeyAlgorithms ordering does), so a server with several keys shows the known one."""
        types = []
        for known in self.known():
            if not known.revoked and known.key.get_name() not in types:
                types.append(known.key.get_name())
        return types

    def verdict(self, key: paramiko.PKey) -> HostKeyRefused | None:
        """None when `key` is the expected one; else the refusal, in one line."""
        shown = f"{key.get_name()} {fingerprint(key)}"
        trust = f"invoke hosts.trust --host {self.host_name}"
        if self.pin:
            if hmac.compare_digest(fingerprint(key), self.pin):
                return None
            return HostKeyChanged(
                f"{self.label}: host key CHANGED: it presents {shown}, the inventory's "
                f"host_key is {self.pin}; refused before logging in (a rebuilt droplet? "
                "check the new key, then put its fingerprint in host_key)"
            )
        known = self.known()
        for each in known:
            if each.key == key:
                if each.revoked:
                    return HostKeyChanged(
                        f"{self.label}: host key {shown} is marked @revoked in "
                        f"{each.path}:{each.line}; refused before logging in"
                    )
                return None
        current = [k for k in known if not k.revoked]
        if not current:
            return UnknownHostKey(
                f"{self.label}: unknown host key {shown} (not in {self.path}); refused "
                f"before logging in; if it is the droplet's key, trust it: {trust}",
                key,
                self,
            )
        old = current[0]
        return HostKeyChanged(
            f"{self.label}: host key CHANGED: it presents {shown}, {old.path}:{old.line} "
            f"knows {old.key.get_name()} {fingerprint(old.key)} for {self.name}; refused before "
            f"logging in (a rebuilt droplet? check, then `ssh-keygen -R '{self.name}' -f "
            f"{old.path}` and {trust})"
        )


class CheckPolicy(paramiko.MissingHostKeyPolicy):
    """paramiko calls this once the key exchange is done and before any authentication: the
    host key is accepted only if the Expectation holds, else the refusal is raised and the
    transport closes without a user name, key or password having been sent."""

    def __init__(self, expectation: Expectation):
        self.expectation = expectation

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):
        refused = self.expectation.verdict(key)
        if refused is not None:
            raise refused
