"""Build (and time) a venv for examples/campaign-app, as a deploy would, for benchmarks.

    python -m devtools.campaign_venv APP_DIR VENV [--pip-cache DIR] [--freeze OUT]

+ APP_DIR: a checkout or export of the campaign app (its requirements.txt is installed);
+ VENV: where to create the venv (removed first if it exists);
+ --pip-cache: pip's cache directory (an empty one measures a cold build);
+ --freeze: also write ``pip freeze`` to OUT (how constraints.txt is regenerated).

Uses Debian 12's ``/usr/bin/python3`` (the droplet's Python). Prints one line with the
seconds taken; pip's output goes to VENV/../<venv name>.pip.log. Exit 1 with one line if
pip fails, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"


def build_venv(app_dir: Path, venv: Path, pip_cache: Path | None = None) -> float:
    """Create ``venv`` and install ``app_dir``'s requirements.txt into it; return seconds."""
    requirements = app_dir / "requirements.txt"
    if not requirements.is_file():
        raise FileNotFoundError(f"{requirements} does not exist")
    if venv.exists():
        shutil.rmtree(venv)
    env = dict(os.environ)
    if pip_cache is not None:
        env["PIP_CACHE_DIR"] = str(pip_cache)
    log = venv.with_name(venv.name + ".pip.log")
    started = time.monotonic()
    with log.open("w") as out:
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venv)], check=True, stdout=out)
        # cwd = the app, so `-c constraints.txt` resolves as it does in a release directory.
        done = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-r", "requirements.txt"],
            cwd=app_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"pip install failed (exit {done.returncode}), see {log}")
    return time.monotonic() - started


def freeze(venv: Path) -> str:
    """``pip freeze`` of ``venv``."""
    return subprocess.run(
        [str(venv / "bin" / "pip"), "freeze"], capture_output=True, text=True, check=True
    ).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app_dir", type=Path)
    parser.add_argument("venv", type=Path)
    parser.add_argument("--pip-cache", type=Path)
    parser.add_argument("--freeze", type=Path)
    args = parser.parse_args(argv)
    try:
        seconds = build_venv(args.app_dir, args.venv.absolute(), args.pip_cache)
    except FileNotFoundError as err:
        print(f"campaign_venv: {err}", file=sys.stderr)
        return 2
    except (RuntimeError, subprocess.CalledProcessError) as err:
        print(f"campaign_venv: {err}", file=sys.stderr)
        return 1
    if args.freeze:
        args.freeze.write_text(freeze(args.venv))
    print(f"campaign_venv: {args.venv} built in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
