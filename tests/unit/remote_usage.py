"""Each remote script's usage header (its first comment lines, `# name.sh ARGS`, one line per
form, a form's continuation indented under its arguments) read as the spec of its arguments:
literal verbs in lower case (`start|stop`), a value in upper case, `X...` and `[...]` for
what may follow. The tests hold every script to having one, and every command the deploy
sends (recorded by the fake droplet) to one of its script's forms."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from staging_ops.remote.scripts import SCRIPTS, script_text


@dataclass(frozen=True)
class Form:
    """One way to call a script: its words; whether more may follow them."""

    words: tuple[str, ...]
    open_ended: bool

    def accepts(self, args: tuple[str, ...]) -> bool:
        if len(args) < len(self.words) or (len(args) > len(self.words) and not self.open_ended):
            return False
        for word, arg in zip(self.words, args, strict=False):
            if word.islower() and arg not in word.split("|"):
                return False
        return True


def header(name: str) -> list[str]:
    """The usage lines of script NAME: each `# NAME ...` line with its continuations."""
    forms: list[str] = []
    for line in script_text(name).splitlines():
        if line.startswith(f"# {name} "):
            forms.append(line.removeprefix(f"# {name} "))
        elif forms and re.match(r"#\s{3,}\S", line):
            forms[-1] += " " + line.lstrip("#").strip()
        else:
            break
    return forms


@functools.cache
def forms(name: str) -> tuple[Form, ...]:
    found = []
    for line in header(name):
        usage = re.split(r":(?:\s|$)", line, maxsplit=1)[0]
        for alternative in usage.split(" | "):
            words: list[str] = []
            open_ended = False
            for word in alternative.split():
                if word.startswith("[") or word.endswith("..."):
                    open_ended = True
                    break
                words.append(word)
            found.append(Form(tuple(words), open_ended))
    return tuple(found)


def check(name: str, args: tuple[str, ...]) -> None:
    """AssertionError unless `args` is one of script NAME's forms."""
    assert any(f.accepts(args) for f in forms(name)), (
        f"{name} called with {len(args)} arguments {[a[:20] for a in args]}, "
        f"its usage: {header(name)}"
    )


ALL = sorted(p.name for p in SCRIPTS.glob("*.sh"))
