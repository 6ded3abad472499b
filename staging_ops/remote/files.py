"""Files on a droplet, written in ONE SFTP session: each lands whole or not at all."""

from __future__ import annotations

import contextlib
import errno
import json
import secrets
from dataclasses import dataclass
from typing import Any

import paramiko

from staging_ops.errors import StagingError
from staging_ops.remote.connection import RemoteHost, Unreachable
from staging_ops.remote.errors import reason
from staging_ops.remote.scripts import home, script_command

# Less free space than this where a write failed: the disk is full (our files are a few KiB).
FULL_DISK_KIB = 1024


@dataclass(frozen=True)
class Write:
    """A file to write atomically: temp file in the same directory, then rename."""

    path: str
    content: str
    mode: int
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Link:
    path: str
    target: str


def apply_files(
    remote: RemoteHost,
    writes: list[Write],
    links: list[Link],
    removes: tuple[str, ...] | list[str] = (),
) -> None:
    """Apply writes, links and removals in ONE SFTP session. Each write or link lands whole or
    not at all: made under a temp name in the same directory, then renamed over the target."""
    if not (writes or links or removes):
        return
    sftp = remote.open_sftp()
    try:
        _apply(remote, sftp, writes, links, removes)
    except (paramiko.SSHException, EOFError) as exc:
        # The session died under us (sshd restarted, the network went): one line, not a
        # traceback; every file is whole, old or new (temp file + rename).
        raise Unreachable(
            f"{remote.host.name}: connection lost during the upload: {reason(exc)}"
        ) from None
    finally:
        sftp.close()


def _apply(
    remote: RemoteHost,
    sftp: paramiko.SFTPClient,
    writes: list[Write],
    links: list[Link],
    removes: tuple[str, ...] | list[str],
) -> None:
    for write in writes:

        def make_file(tmp: str, write: Write = write) -> None:
            with sftp.open(tmp, "wb") as handle:
                handle.write(write.content.encode())
            sftp.chmod(tmp, write.mode)
            sftp.chown(tmp, write.uid, write.gid)

        _replace(remote, sftp, "write", write.path, make_file)
        remote.uploads += 1
    for link in links:
        _replace(remote, sftp, "link", link.path, lambda tmp, t=link.target: sftp.symlink(t, tmp))
    for path in removes:
        with contextlib.suppress(FileNotFoundError):
            sftp.remove(path)


def _replace(
    remote: RemoteHost, sftp: paramiko.SFTPClient, what: str, path: str, make: Any
) -> None:
    """make(tmp) then rename tmp over path; on failure the temp is removed and one line says
    which host, what and why (a full disk, a missing directory, ...)."""
    tmp = _temp_name(path)
    try:
        make(tmp)
        sftp.posix_rename(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            sftp.remove(tmp)
        why = _failure_reason(remote, path.rpartition("/")[0] or "/", exc)
        raise StagingError(f"{remote.host.name}: {what} {path}: {why}") from None


def _failure_reason(remote: RemoteHost, directory: str, exc: OSError) -> str:
    """Why a write failed, in words. SFTP version 3 has no code for a full disk: OpenSSH's
    sftp-server answers a bare "Failure", so in that case the free space is asked for."""
    why = exc.strerror or reason(exc)
    if exc.errno != errno.ENOSPC and why != "Failure":
        return why
    code, out, _ = remote.run(disk_free_command(directory), check=False)
    free = parse_disk_free(out) if code == 0 else None
    if free is not None and free < FULL_DISK_KIB:
        return f"no space left on the device ({free} KiB free in {directory})"
    return why


@home("disk-free.sh")
def disk_free_command(directory: str) -> str:
    """The KiB free where `directory` is (parse_disk_free reads it)."""
    return script_command("disk-free.sh", directory)


def parse_disk_free(out: str) -> int | None:
    """disk-free.sh's JSON line -> the KiB available; None when it said nothing readable (the
    write's own reason is then all there is to say: no error of its own)."""
    try:
        found = json.loads(out)
    except ValueError:
        return None
    kib = found.get("available_kib") if isinstance(found, dict) else None
    return kib if isinstance(kib, int) and not isinstance(kib, bool) else None


def _temp_name(path: str) -> str:
    directory, _, name = path.rpartition("/")
    return f"{directory}/.{name}.staging-ops-{secrets.token_hex(4)}"
