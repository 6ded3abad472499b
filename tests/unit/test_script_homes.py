"""Each remote script has one home: builders registered with `remote.scripts.home`, whose
parameters are the script's usage header's words (same count, same order; a verb is a
literal, not a parameter), beside the parser of its answer. Only a builder calls
`script_command`. Generic over every home: a new script or verb is held to this by being
registered, not by a test written for it."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from staging_ops.remote.scripts import HOMES, script_command, script_text
from tests.unit.remote_usage import ALL, check, header

PRODUCT = Path(__file__).resolve().parents[2] / "staging_ops"

# Scripts run otherwise: run-process.sh is installed as bin/run-process (systemd runs it).
NOT_RUN_BY_COMMAND = {"run-process.sh"}

VALUE = re.compile(r"[A-Z][A-Z0-9_]*")


def _modules() -> list[Path]:
    return sorted(p for p in PRODUCT.rglob("*.py") if "@home(" in p.read_text())


def _import_homes() -> None:
    for path in _modules():
        name = ".".join(path.relative_to(PRODUCT.parent).with_suffix("").parts)
        importlib.import_module(name)


_import_homes()


def _usage(script: str, verb: str | None) -> tuple[list[str], list[str]]:
    """The header's form for `verb`: its value words before anything optional or repeated,
    and the words from there on (the tail)."""
    for line in header(script):
        usage = re.split(r":(?:\s|$)", line, maxsplit=1)[0]
        for alternative in usage.split(" | "):
            words = alternative.split()
            first = words[0].strip("[].") if words else ""
            leading = words[0] if first and not VALUE.fullmatch(first) else None
            if (verb is None and leading is None) or (
                verb is not None and leading is not None and verb in leading.split("|")
            ):
                cut = next(
                    (i for i, w in enumerate(words) if w.startswith("[") or w.endswith("...")),
                    len(words),
                )
                fixed = [w for w in words[:cut] if VALUE.fullmatch(w)]
                tail = [w.strip("[].") for w in words[cut:]]
                return fixed, tail
    raise AssertionError(f"{script}: no form for verb {verb!r} in {header(script)}")


def _parameters(builder: Callable[..., object]) -> tuple[list[str], str | None]:
    """The builder's named parameters and its repeated or optional last one (None: none)."""
    if dataclasses.is_dataclass(builder):
        names = [f.name for f in dataclasses.fields(builder)]
        last = dataclasses.fields(builder)[-1]
        optional = last.default is not dataclasses.MISSING or (
            last.default_factory is not dataclasses.MISSING
        )
        return (names[:-1], names[-1]) if optional else (names, None)
    params = list(inspect.signature(builder).parameters.values())
    fixed = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty]
    rest = [p.name for p in params if p.name not in fixed]
    assert len(rest) <= 1, f"{builder.__name__}: more than one optional parameter {rest}"
    return fixed, (rest[0] if rest else None)


HOME_IDS = sorted(HOMES, key=lambda k: (k[0], k[1] or ""))


def test_every_remote_script_run_by_a_command_has_a_home():
    homed = {script for script, _ in HOMES}
    assert homed == set(ALL) - NOT_RUN_BY_COMMAND


def _disagreement(script: str, verb: str | None, builder: Callable[..., object]) -> str | None:
    """How `builder`'s parameters differ from the header's words for `verb`; None: they agree."""
    fixed, tail = _usage(script, verb)
    names, optional = _parameters(builder)
    if [n.upper() for n in names] != fixed:
        return f"parameters {names}, header {fixed}"
    if (optional is not None) != bool(tail):
        return f"optional parameter {optional}, header's tail {tail}"
    if optional and VALUE.fullmatch(tail[0]):
        # Named as the repeated words: `units` for UNIT..., `link_units` for [LINK UNITS]...
        word = optional.upper().rstrip("S")
        if not any(word.endswith(w.rstrip("S")) or w.endswith(word) for w in tail):
            return f"optional parameter {optional}, header's tail {tail}"
    return None


@pytest.mark.parametrize(("script", "verb"), HOME_IDS)
def test_a_builders_parameters_are_its_usage_headers_words(script, verb):
    assert _disagreement(script, verb, HOMES[(script, verb)]) is None, header(script)


def test_a_builder_that_disagrees_with_its_header_is_seen():
    """The check above can fail: names swapped, one missing, a repeated one missing or
    misnamed, each is a disagreement."""

    def swapped(release: str, current: str) -> None: ...
    def short(current: str) -> None: ...
    def closed(current: str) -> None: ...
    def misnamed(current: str, *pids: str) -> None: ...
    def right(current: str, *units: str) -> None: ...

    assert _disagreement("slot-current.sh", "set", swapped)
    assert _disagreement("slot-current.sh", "set", short)
    assert _disagreement("slot-current.sh", "stop", closed)
    assert _disagreement("slot-current.sh", "stop", misnamed)
    assert _disagreement("slot-current.sh", "stop", right) is None


def _built(script: str, verb: str | None) -> tuple[list[str], list[str]]:
    """The command the builder makes of placeholder values (two for a repeated one), as
    words; and those values in order."""
    builder = HOMES[(script, verb)]
    names, optional = _parameters(builder)
    values = [f"<{n}>" for n in names]
    repeated = not dataclasses.is_dataclass(builder) and any(
        p.kind is p.VAR_POSITIONAL for p in inspect.signature(builder).parameters.values()
    )
    extra = [f"<{optional}{n}>" for n in (1, 2)[: 2 if repeated else 1]] if optional else []
    if dataclasses.is_dataclass(builder):
        extra = [f"<{optional}1>", f"<{optional}2>"] if optional else []
    if dataclasses.is_dataclass(builder):
        command = builder(*values, *([tuple(extra)] if optional else [])).command()
    else:
        command = builder(*values, *extra)
    return shlex.split(command), values + extra


@pytest.mark.parametrize(("script", "verb"), HOME_IDS)
def test_a_builder_passes_its_values_in_the_headers_order(script, verb):
    words, values = _built(script, verb)
    assert words[:4] == ["sh", "-c", script_text(script), script]
    args = words[4:]
    check(script, tuple(args))
    assert [a for a in args if a.startswith("<")] == values
    if verb is not None:
        assert args[0] == verb


def _calls_outside_homes(path: Path) -> list[int]:
    """Lines of `path` that call script_command outside a builder registered with `home`."""
    tree = ast.parse(path.read_text())
    found: list[int] = []

    def registered(node: ast.AST) -> bool:
        decorators = getattr(node, "decorator_list", [])
        return any(
            isinstance(d, ast.Call) and getattr(d.func, "id", getattr(d.func, "attr", "")) == "home"
            for d in decorators
        )

    def visit(node: ast.AST, inside: bool) -> None:
        inside = inside or registered(node)
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name == "script_command" and not inside:
                found.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(tree, False)
    return found


def test_only_home_builders_call_script_command():
    outside = {
        str(path.relative_to(PRODUCT)): lines
        for path in sorted(PRODUCT.rglob("*.py"))
        if (lines := _calls_outside_homes(path))
    }
    assert not outside, outside


def test_a_call_outside_a_builder_is_seen(tmp_path):
    """The check above can fail: a call in a plain function is found, one in a builder not."""
    module = tmp_path / "m.py"
    module.write_text(
        "@home('x.sh')\ndef b(a):\n    return script_command('x.sh', a)\n\n"
        "def f():\n    return remote.script_command('x.sh', 1)\n"
    )
    assert _calls_outside_homes(module) == [6]


# --- a few built commands, by string equality (as Kamal tests its command builders) -------


def _line(script: str, *args: str) -> str:
    return " ".join(["sh -c", shlex.quote(script_text(script)), script, *args])


def test_built_commands_are_these_lines():
    from staging_ops.deploy import current_sh, lock, processes_sh, releases_sh

    assert current_sh.set_command("/s/current", "r1") == _line(
        "slot-current.sh", "set", "/s/current", "r1"
    )
    assert current_sh.stop_command("/s/current", "a.service", "b.service") == _line(
        "slot-current.sh", "stop", "/s/current", "a.service", "b.service"
    )
    assert releases_sh.record_command("/s/releases", "/s/deploys.log", "a b", "r2", "", 5) == (
        _line("deploy-releases.sh", "record", "/s/releases", "/s/deploys.log", "'a b'", "r2")
        + " '' 5"
    )
    assert processes_sh.command("/etc/systemd/system", "app-worker@1:", 0) == _line(
        "deploy-processes.sh", "/etc/systemd/system", "app-worker@1:", "0"
    )
    # A guarded script is handed to lock-guard.sh as its own words, after `--`.
    set_r1 = current_sh.set_command("/s/current", "r1")
    assert lock.guarded("/s/.deploy.lock", "tok", set_r1) == _line(
        "lock-guard.sh",
        "/s/.deploy.lock.holder",
        "tok",
        str(lock.FENCE_WAIT),
        str(lock.LOST),
        lock.LOST_MARK,
        "--",
        set_r1,
    )
    assert lock.guarded("/l", "t", "echo $0") == _line(
        "lock-guard.sh", "/l.holder", "t", "300", "74", lock.LOST_MARK, "--", "sh -c 'echo $0'"
    )


def test_a_script_command_joined_to_more_shell_is_a_line_again():
    command = script_command("disk-free.sh", "/")
    assert command.argv == ("sh", "-c", script_text("disk-free.sh"), "disk-free.sh", "/")
    assert type(command + " 2>&1") is str


def test_disk_free_answers_one_json_line_read_back():
    from staging_ops.remote.files import disk_free_command, parse_disk_free

    out = subprocess.run(
        ["sh", "-c", disk_free_command("/")], capture_output=True, text=True, check=True
    ).stdout
    assert len(out.splitlines()) == 1
    free = parse_disk_free(out)
    assert isinstance(free, int) and free >= 0
    for unreadable in ("", "Filesystem 1024-blocks Used Available\n", '{"available_kib": "x"}'):
        assert parse_disk_free(unreadable) is None
