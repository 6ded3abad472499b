"""The droplet's base tree: a fresh Debian 12 made by debootstrap, customised, then cached
read-only under CACHE/<key>/rootfs, where key is a hash of the recipe (the debootstrap
arguments, the mirror, this machine's apt settings that are copied in, and the source of the
customisation step), so a changed recipe builds a new base and an unchanged one is reused.

A build goes into CACHE/.build-<key>-<pid> and is renamed to CACHE/<key> only when complete,
under an exclusive flock on CACHE/.lock, so a killed build never leaves a "complete" base and
two builds never race.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from staging_ops.errors import StagingError

CACHE_ENV = "STAGING_DROPLET_CACHE"
DEFAULT_CACHE = Path("/var/cache/staging-ops/droplet-base")
SUITE = "bookworm"
INCLUDE = "systemd,systemd-sysv,dbus,openssh-server,python3,sudo,iproute2,ca-certificates"
HOST_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
# The host's apt settings that matter inside: the archive is a snapshot, so its Release files
# are "expired" and apt must not check Valid-Until/Date.
HOST_APT_CONF = (Path("/etc/apt/apt.conf.d/99artifact-registry"),)
HOSTKEY_UNIT = "ssh-hostkeys.service"

Progress = Callable[[str], None]


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def mirrors() -> dict[str, str]:
    """{archive path: URI} from this machine's deb822 sources, e.g. {"debian": "http://
    deb.debian.org/debian", "debian-security": "http://deb.debian.org/debian-security"}."""
    found: dict[str, str] = {}
    text = HOST_SOURCES.read_text() if HOST_SOURCES.exists() else ""
    for uri in re.findall(r"^URIs:\s*(\S+)", text, flags=re.MULTILINE):
        found[uri.rstrip("/").rsplit("/", 1)[-1]] = uri.rstrip("/")
    if "debian" not in found:
        raise StagingError(f"droplet: no Debian mirror (URIs: .../debian) in {HOST_SOURCES}")
    return found


def debootstrap_args(target: Path) -> list[str]:
    return [
        "debootstrap",
        "--variant=minbase",
        f"--include={INCLUDE}",
        SUITE,
        str(target),
        mirrors()["debian"],
    ]


def recipe_key() -> str:
    recipe = {
        "debootstrap": debootstrap_args(Path("TARGET")),
        "sources": HOST_SOURCES.read_text() if HOST_SOURCES.exists() else "",
        "apt_conf": {str(p): p.read_text() for p in HOST_APT_CONF if p.exists()},
        "customise": inspect.getsource(_customise),
        "hostkey_unit": HOSTKEY_UNIT_TEXT,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def cached_base() -> Path | None:
    """The complete base for the current recipe, if one is cached."""
    root = cache_dir() / recipe_key() / "rootfs"
    return root if (root.parent / "complete").is_file() else None


def ensure_base(progress: Progress | None = None) -> tuple[Path, bool]:
    """The base tree's rootfs for the current recipe, built if missing; (path, built now)."""
    say = progress or (lambda _line: None)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    key = recipe_key()
    final = cache / key
    with _locked(cache / ".lock", say):
        if (final / "complete").is_file():
            return final / "rootfs", False
        _remove_stale_builds(cache)
        build = cache / f".build-{key}-{os.getpid()}"
        try:
            _debootstrap(build / "rootfs", say)
            say("customising the tree")
            _customise(build / "rootfs")
            (build / "recipe-key").write_text(key + "\n")
            (build / "complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
            if final.exists():  # an incomplete leftover under the final name
                remove_tree(final)
            build.rename(final)
        except BaseException:
            remove_tree(build)
            raise
        _prune(cache, keep=key, say=say)
    return final / "rootfs", True


@contextlib.contextmanager
def _locked(path: Path, say: Progress) -> Iterator[None]:
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another base build ({path} is locked)")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _debootstrap(target: Path, say: Progress) -> None:
    target.mkdir(parents=True)
    args = debootstrap_args(target)
    say(f"debootstrap {SUITE} from {args[-1]} (a minute or two)")
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    tail: list[str] = []
    seen: set[str] = set()
    last_said = 0.0
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip()
        tail = [*tail[-4:], line]
        # debootstrap says "I: Retrieving foo 1.2" for each package; report each kind of
        # step the first time, and otherwise at most every 10 s, so the operator sees it move.
        verb = line[3:].split(" ", 1)[0] if line.startswith("I: ") else ""
        now = time.monotonic()
        if verb and (verb not in seen or now - last_said > 10):
            say(line[3:])
            seen.add(verb)
            last_said = now
    if process.wait() != 0:
        raise StagingError(f"droplet: debootstrap failed: {' | '.join(tail[-3:])}")


HOSTKEY_UNIT_TEXT = """[Unit]
Description=Generate this droplet's SSH host keys at first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
"""


def _customise(root: Path) -> None:
    """What makes the debootstrap tree a fresh cloud image: apt sources and settings as on
    this machine, no apt lists (like a fresh droplet, `apt-get install` fails until `apt-get
    update`), no machine identity (empty machine-id, host keys made at first boot),
    systemd-networkd for the static address the droplet gets, /etc/hosts with localhost
    (debootstrap writes none; PostgreSQL will not start without it)."""
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    shutil.copy2(HOST_SOURCES, root / "etc/apt/sources.list.d" / HOST_SOURCES.name)
    for conf in HOST_APT_CONF:
        if conf.exists():
            shutil.copy2(conf, root / "etc/apt/apt.conf.d" / conf.name)
    for lists in (root / "var/lib/apt/lists").glob("*"):
        if lists.is_file() and lists.name != "lock":
            lists.unlink()
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    for cache in (root / "var/cache/apt").glob("*.bin"):
        cache.unlink()
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
    (root / "etc/hostname").write_text("")
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    (root / "etc/resolv.conf").write_text("")
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/systemd/system" / HOSTKEY_UNIT).write_text(HOSTKEY_UNIT_TEXT)
    systemctl = ["systemctl", f"--root={root}", "--quiet"]
    _check([*systemctl, "enable", HOSTKEY_UNIT, "systemd-networkd.service"])
    # apt's daily timers would take the dpkg lock while a test provisions; a droplet under
    # test runs apt only when the toolkit does.
    _check([*systemctl, "mask", "apt-daily.timer", "apt-daily-upgrade.timer"])


def _check(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-2:]
        raise StagingError(f"droplet: {' '.join(args[:3])} failed: {' | '.join(detail)}")


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below `path` (from /proc/mounts), deepest first."""
    prefix = str(path.resolve()).rstrip("/")
    found = []
    for line in Path("/proc/mounts").read_text().splitlines():
        point = line.split()[1].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_tree(path: Path) -> None:
    """rm -rf that never descends into a mount: a killed debootstrap leaves /proc and /sys
    mounted inside its target; those are unmounted first, and if one stays the tree stays."""
    for point in mounts_under(path):
        subprocess.run(["umount", "--lazy", str(point)], capture_output=True, check=False)
    left = mounts_under(path)
    if left:
        raise StagingError(f"droplet: {left[0]} is still mounted; not deleting {path}")
    shutil.rmtree(path, ignore_errors=True)


def _remove_stale_builds(cache: Path) -> None:
    # Called under the lock: no build is running, so any .build-* is a killed one.
    for stale in cache.glob(".build-*"):
        remove_tree(stale)


def _prune(cache: Path, keep: str, say: Progress) -> None:
    """Old recipes' bases, except those a running droplet still has as its lower layer."""
    in_use = Path("/proc/mounts").read_text()
    for old in cache.iterdir():
        if old.name.startswith(".") or old.name == keep or not old.is_dir():
            continue
        if str(old / "rootfs") in in_use:
            continue
        say(f"pruning old base {old.name}")
        remove_tree(old)
