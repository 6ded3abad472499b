"""Remote script deploy-releases.sh in one place: its verbs' commands, their arguments by name
in the order of its usage header, and the parser of `list`'s answer (one JSON line: Releases).
Pure: the steps that run them are rollback.py (list, spec), record.py (record), logs.py (spec)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from staging_ops.errors import StagingError
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
    """`list`'s one JSON line (an array of releases, newest first) -> Releases; StagingError
    if it is not that."""
    try:
        return [
            Release(
                name=str(r["name"]),
                bad=r["bad"] is True,
                ok=r["verified"] is True,
                commit=str(r["commit"]),
                branch=str(r["branch"]),
            )
            for r in _array(json.loads(out))
        ]
    except (ValueError, TypeError, KeyError):
        raise StagingError(f"{SCRIPT} list: unreadable answer {out[:200]!r}") from None


def _array(value: object) -> list[dict[str, object]]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise TypeError("not an array of objects")
    return value
