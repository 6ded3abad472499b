"""Every remote script says how it is called on its first line (`# name.sh ARGS`), and the
header reads as a spec (tests/unit/remote_usage.py) that the deploy's commands are held to
(the fake droplet checks each one it is sent: tests/unit/deploy/test_failure_paths.py)."""

from __future__ import annotations

import dataclasses
import shlex

import pytest

from staging_ops.deploy import releases_sh
from staging_ops.deploy.release import ExportArgs, Exported
from staging_ops.errors import StagingError
from staging_ops.remote.scripts import script_text
from tests.unit.remote_usage import ALL, Form, check, forms


@pytest.mark.parametrize("name", ALL)
def test_every_script_opens_with_its_usage(name):
    assert script_text(name).startswith(f"# {name} ")
    assert forms(name), name


def test_a_header_with_verbs_and_continuations_reads_as_forms():
    assert forms("slot-current.sh")[:3] == (
        Form(("set", "CURRENT", "RELEASE"), False),
        Form(("clear", "CURRENT"), False),
        Form(("read", "CURRENT"), False),
    )
    (release,) = forms("deploy-release.sh")
    assert release.words[-1] == "INDEX_URL" and release.open_ended
    assert forms("deploy-candidate.sh")[0].words[0] == "start|stop"


@pytest.mark.parametrize(
    ("name", "args", "ok"),
    [
        ("slot-current.sh", ("read", "/c"), True),
        ("slot-current.sh", ("read", "/c", "extra"), False),
        ("slot-current.sh", ("move", "/c"), False),
        ("deploy-verify-units.sh", (), True),
        ("deploy-mark-bad.sh", (), False),
        ("deploy-candidate.sh", ("stop", "/root", "", "0", "u1"), True),
    ],
)
def test_a_command_is_held_to_its_scripts_forms(name, args, ok):
    if ok:
        check(name, args)
    else:
        with pytest.raises(AssertionError):
            check(name, args)


def test_deploy_release_sh_named_arguments_are_its_usage_headers():
    """ExportArgs names deploy-release.sh's arguments; its fields, in order, are the header's
    words (REQUIREMENTS... the rest), and its command passes them in that order."""
    (form,) = forms("deploy-release.sh")
    names = [f.name for f in dataclasses.fields(ExportArgs)]
    assert [n.upper() for n in names] == [*form.words, "REQUIREMENTS"]
    args = ExportArgs(*(f"<{n}>" for n in names[:-1]), requirements=("a.txt", "b.txt"))
    command = shlex.split(args.command())
    assert command[:4] == ["sh", "-c", script_text("deploy-release.sh"), "deploy-release.sh"]
    assert command[4:] == [*(f"<{n}>" for n in names[:-1]), "a.txt", "b.txt"]
    check("deploy-release.sh", tuple(command[4:]))


@pytest.mark.parametrize(
    ("out", "venv", "live"),
    [
        (
            'pip: a warning\n{"venv": "built", "key": "0123", "live": "/srv/s/releases/r1"}\n',
            "built 0123",
            "r1",
        ),
        ('{"venv": "reused", "key": "abcd", "live": ""}', "reused abcd", None),
    ],
)
def test_deploy_release_sh_answer(out, venv, live):
    assert Exported.parse(out) == Exported(venv, live)


@pytest.mark.parametrize(
    "out", ["", "reused abcd\nlive \n", '{"venv": "built", "key": "0123"}', '{"venv": 1}']
)
def test_an_unreadable_deploy_release_sh_answer_is_one_clear_error(out):
    with pytest.raises(StagingError, match=r"deploy-release\.sh: unreadable answer"):
        Exported.parse(out)


@pytest.mark.parametrize(
    "command",
    [
        releases_sh.list_command("/s/releases"),
        releases_sh.spec_command("/s/releases", "r1"),
        releases_sh.record_command("/s/releases", "/s/deploys.log", "a line", "r2", "", 5),
    ],
)
def test_deploy_releases_sh_commands_are_its_usage_forms(command):
    words = shlex.split(command)
    assert words[3] == releases_sh.SCRIPT
    check(releases_sh.SCRIPT, tuple(words[4:]))
