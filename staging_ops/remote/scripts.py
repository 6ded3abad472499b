"""Remote shell scripts are files (staging_ops/remote/scripts/*.sh, package data, each
shellcheck-clean) run with their values as arguments: `sh -c SCRIPT NAME ARG...`. The script's
text never has a value pasted into it, so no value can change what the script does.

Each script has one home module: its builders (registered with `home`, parameters named as
its usage header's words, in order) beside the parser of its answer. Only builders call
`script_command` (a unit test holds the product to that and each builder to its header)."""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

SCRIPTS = Path(__file__).resolve().parent / "scripts"

Builder = TypeVar("Builder", bound=Callable[..., object])

HOMES: dict[tuple[str, str | None], Callable[..., object]] = {}
"""(script, verb or None) -> the builder of that command, as `home` registered it."""


def home(name: str, verb: str | None = None) -> Callable[[Builder], Builder]:
    """Registers the decorated function (or dataclass of arguments) as the builder of script
    NAME's command (its VERB's, for a script with verbs)."""

    def register(builder: Builder) -> Builder:
        HOMES[(name, verb)] = builder
        return builder

    return register


@functools.cache
def script_text(name: str) -> str:
    """The text of scripts/NAME (read once)."""
    path = SCRIPTS / name
    if path.parent != SCRIPTS or not path.is_file():
        raise ValueError(f"no remote script {name!r} in {SCRIPTS}")
    return path.read_text()


class ScriptCommand(str):
    """A script's command line that also knows its words (`argv`), so a wrapper that runs a
    program (lock-guard.sh) is handed the words, never the line to evaluate. Joined to more
    shell text (`cmd + " 2>&1"`), it is a plain str again: then it is a line."""

    argv: tuple[str, ...]

    def __new__(cls, argv: tuple[str, ...]) -> ScriptCommand:
        line = super().__new__(cls, shlex.join(argv))
        line.argv = argv
        return line


def script_command(name: str, *args: str | int) -> ScriptCommand:
    """The one shell command that runs scripts/NAME with `args` as $1, $2, ...: `$0` is the
    script's name, so its own error messages say which script spoke."""
    return ScriptCommand(("sh", "-c", script_text(name), name, *(str(a) for a in args)))


def argv_of(command: str) -> tuple[str, ...]:
    """The words that run `command`: a script's own (ScriptCommand), else `sh -c COMMAND` (a
    line of shell, run as sh runs it)."""
    if isinstance(command, ScriptCommand):
        return command.argv
    return ("sh", "-c", command)
