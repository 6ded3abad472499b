"""Remote shell scripts are files (staging_ops/remote/scripts/*.sh, package data, each
shellcheck-clean) run with their values as arguments: `sh -c SCRIPT NAME ARG...`. The script's
text never has a value pasted into it, so no value can change what the script does."""

from __future__ import annotations

import functools
import shlex
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "scripts"


@functools.cache
def script_text(name: str) -> str:
    """The text of scripts/NAME (read once)."""
    path = SCRIPTS / name
    if path.parent != SCRIPTS or not path.is_file():
        raise ValueError(f"no remote script {name!r} in {SCRIPTS}")
    return path.read_text()


def script_command(name: str, *args: str | int) -> str:
    """The one shell command that runs scripts/NAME with `args` as $1, $2, ...: `$0` is the
    script's name, so its own error messages say which script spoke."""
    quoted = " ".join(shlex.quote(str(a)) for a in args)
    return f"sh -c {shlex.quote(script_text(name))} {shlex.quote(name)} {quoted}".rstrip()
