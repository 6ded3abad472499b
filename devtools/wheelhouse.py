"""A wheelhouse for a requirements file: every wheel pip needs to install it offline, built on
this machine for a droplet that reaches no package index (the inventory's
``[app] pip_find_links`` names it on the droplet; devtools.droplet bind-mounts it there).

    python -m devtools.wheelhouse REQUIREMENTS [--cache DIR]

Built with Debian 12's ``/usr/bin/python3`` (the droplet's Python: same version, same wheel
tags) in a throwaway venv that has the ``wheel`` package (an sdist such as python-nvd3 builds
no wheel without it), by ``pip wheel -r REQUIREMENTS -w DIR`` run in the requirement file's
directory so its ``-c``/``-r`` names resolve as they do in a release. Cached under
``/var/cache/staging-ops/wheelhouse/<key>/``, the key hashing every file pip reads (the
requirements and the files they name with -r/-c, recursively) and the Python version: a second
build of the same files is a no-op. Built in a temp dir and renamed when whole, under an flock,
so a killed build leaves nothing that looks finished. Prints the directory and the seconds it
took; exit 1 with one line if pip fails, 2 for a missing requirements file.

Example::

    house, built = ensure_wheelhouse(Path("examples/campaign-app/requirements.txt"))
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
CACHE = Path("/var/cache/staging-ops/wheelhouse")
COMPLETE = ".complete"
# A line that names another file pip reads: -r/-c and their long forms (as deploy-release.sh's
# venv key reads them).
_NAMES = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)[\s=]*([^\s#]+)")


class WheelhouseError(RuntimeError):
    """pip could not build the wheelhouse; the message is one line naming pip's log."""


def files_read(requirements: Path) -> list[Path]:
    """`requirements` and every file it names with -r/-c, recursively, each once, in the order
    found (a file that does not exist is pip's error to report, not ours)."""
    found: list[Path] = []
    pending = [requirements]
    while pending:
        path = pending.pop(0)
        if path in found or not path.is_file():
            continue
        found.append(path)
        for line in path.read_text().splitlines():
            match = _NAMES.match(line)
            if match:
                pending.append((path.parent / match.group(1)).resolve())
    return found


def python_version(python: str = SYSTEM_PYTHON) -> str:
    return subprocess.run([python, "-V"], capture_output=True, text=True, check=True).stdout.strip()


def wheelhouse_key(requirements: Path, python: str = SYSTEM_PYTHON) -> str:
    """The hash of every file pip reads (its name relative to the requirements file's
    directory, and its bytes) and the interpreter's version: what decides the wheels."""
    requirements = requirements.resolve()
    digest = hashlib.sha256()
    for path in files_read(requirements):
        digest.update(os.path.relpath(path, requirements.parent).encode() + b"\n")
        digest.update(path.read_bytes())
    digest.update(python_version(python).encode())
    return digest.hexdigest()[:16]


def ensure_wheelhouse(
    requirements: Path, cache: Path = CACHE, python: str = SYSTEM_PYTHON
) -> tuple[Path, bool]:
    """The wheelhouse for `requirements`: (its directory, True if built now, False if it was
    cached). Raises FileNotFoundError for a missing requirements file, WheelhouseError when
    pip fails (nothing is left under the cache's key then)."""
    requirements = requirements.resolve()
    if not requirements.is_file():
        raise FileNotFoundError(f"{requirements} does not exist")
    target = cache / wheelhouse_key(requirements, python)
    if (target / COMPLETE).is_file():
        return target, False
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another build of the same key: wait, then reuse
        if (target / COMPLETE).is_file():
            return target, False
        shutil.rmtree(target, ignore_errors=True)  # a build killed half-way
        with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=cache) as tmp:
            wheels = Path(tmp) / "wheels"
            _build(requirements, Path(tmp) / "venv", wheels, cache / f"{target.name}.log", python)
            (wheels / COMPLETE).write_text(f"{requirements}\n")
            wheels.chmod(0o755)  # the droplet's service user reads it through the bind mount
            wheels.rename(target)
    return target, True


def _build(requirements: Path, venv: Path, wheels: Path, log: Path, python: str) -> None:
    # The host's own pip settings (index, proxy, certificates) apply: this machine reaches
    # the index, the droplet does not.
    steps = [
        [python, "-m", "venv", str(venv)],
        [str(venv / "bin/pip"), "install", "--quiet", "wheel"],
        [str(venv / "bin/pip"), "wheel", "--quiet", "-r", str(requirements), "-w", str(wheels)],
    ]
    with log.open("w") as out:
        for step in steps:
            done = subprocess.run(
                step, cwd=requirements.parent, stdout=out, stderr=subprocess.STDOUT, check=False
            )
            if done.returncode != 0:
                raise WheelhouseError(
                    f"{' '.join(step[1:3])} exited {done.returncode} for {requirements} (see {log})"
                )
    for wheel in wheels.iterdir():
        wheel.chmod(0o644)


def combine(houses: list[Path], target: Path) -> int:
    """One directory with the wheels of every house in `houses` (hard links where the
    filesystem allows, else copies), for one find-links that serves several requirement sets
    (an Airflow 2 and an Airflow 3 branch). A wheel of one name is the same release in each.
    Returns how many wheels `target` holds."""
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o755)
    for house in houses:
        for wheel in house.glob("*.whl"):
            link = target / wheel.name
            if link.exists():
                continue
            try:
                os.link(wheel, link)
            except OSError:  # another filesystem
                shutil.copy2(wheel, link)
    return sum(1 for _ in target.glob("*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", type=Path)
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        house, built = ensure_wheelhouse(args.requirements, args.cache)
    except FileNotFoundError as err:
        print(f"wheelhouse: {err}", file=sys.stderr)
        return 2
    except WheelhouseError as err:
        print(f"wheelhouse: {err}", file=sys.stderr)
        return 1
    count = sum(1 for p in house.iterdir() if p.suffix == ".whl")
    state = "built" if built else "cached"
    print(f"wheelhouse: {house} {state}, {count} wheels, {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
