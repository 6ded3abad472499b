"""Remote script deploy-releases.sh in one place: its verbs' commands, their arguments by name
in the order of its usage header, and the parser of `list`'s answer (Release). Pure: the
steps that run them are rollback.py (list, spec), record.py (record) and logs.py (spec)."""

from __future__ import annotations

from dataclasses import dataclass

from staging_ops.remote.scripts import home, script_command

SCRIPT = "deploy-releases.sh"


@dataclass(frozen=True)
class Release:
    """One release of the slot as `list` tells it: whether it is marked `.bad`, whether it
    passed verify (`ok`: `.ok`, or a line in deploys.log), and the commit and branch its
    .release-env names."""

    name: str
    bad: bool
    ok: bool
    commit: str
    branch: str


@home(SCRIPT, "list")
def list_command(releases: str) -> str:
    """Every release in the directory `releases`, newest first (parse_list reads it)."""
    return script_command(SCRIPT, "list", releases)


@home(SCRIPT, "spec")
def spec_command(releases: str, release: str) -> str:
    """`release`'s .process-spec.json, or nothing for a release made before there was one."""
    return script_command(SCRIPT, "spec", releases, release)


@home(SCRIPT, "record")
def record_command(
    releases: str, deploys_log: str, line: str, release: str, previous: str, keep: int
) -> str:
    """`line` into `deploys_log`, `release` marked verified, the newest `keep` releases kept
    (never `release`, `previous` or the one rollback would pick); exit 3: not marked."""
    return script_command(SCRIPT, "record", releases, deploys_log, line, release, previous, keep)


def parse_list(out: str) -> list[Release]:
    """`list`'s lines (`<release> <bad 0|1> <verified 0|1> <commit> <branch>`) -> Releases;
    a line that is not one is skipped."""
    found = []
    for line in out.splitlines():
        parts = line.split(" ", 4)
        if len(parts) == 5:
            found.append(
                Release(
                    name=parts[0],
                    bad=parts[1] == "1",
                    ok=parts[2] == "1",
                    # Quoted since .release-env is sourced by sh; older releases are not.
                    commit=parts[3].strip('"'),
                    branch=parts[4].strip('"'),
                )
            )
    return found
