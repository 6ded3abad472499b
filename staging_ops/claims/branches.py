"""Ask the app's git repository which branches exist and which are merged into main.

`reap` uses this to free slots whose work has landed. Nothing is guessed from names: the
remote's heads come from `git ls-remote`, and "merged" means the branch tip is an ancestor of
main (what `git branch --merged` means) but not one of main's own first-parent commits, so a
branch just made from main, or reset to it, with no work of its own yet, is not "merged". It is
computed in a throwaway bare repository that fetches only main and the branches in question
(blobless where the server allows it).
Every git call is an argument list (no shell) with a timeout and no terminal prompts.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

from staging_ops.errors import BadInput, StagingError
from staging_ops.slots.model import BRANCH, MAIN_BRANCH

GIT_TIMEOUT = 120.0


@dataclass(frozen=True)
class BranchFacts:
    """The remote's branch heads, and which of the asked-about branches are merged into main."""

    heads: dict[str, str]
    merged: frozenset[str]

    def exists(self, branch: str) -> bool:
        return branch in self.heads


def redact_url(url: str) -> str:
    """A repository URL without any credentials (`https://user:token@host` → `https://host`)."""
    return re.sub(r"(://)[^/@\s]*@", r"\1", url)


def _git(args: list[str], url: str, cwd: str | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise StagingError("git is not installed: cannot check branches") from None
    except subprocess.TimeoutExpired:
        raise StagingError(f"git {args[0]} {redact_url(url)} timed out") from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        detail = redact_url(lines[-1]) if lines else f"exit {done.returncode}"
        raise StagingError(f"git {args[0]} {redact_url(url)} failed: {detail}")
    return done.stdout


def remote_heads(url: str) -> dict[str, str]:
    """{branch: sha} of every branch of the remote repository."""
    if url.startswith("-"):
        raise BadInput(f"repository URL {url!r} must not start with '-'")
    heads = {}
    for line in _git(["ls-remote", "--heads", url], url).splitlines():
        sha, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/"):
            heads[ref.removeprefix("refs/heads/")] = sha
    return heads


def branch_facts(url: str, branches: Iterable[str], main: str = MAIN_BRANCH) -> BranchFacts:
    """Which of `branches` exist on the remote, and which of those are merged into `main`."""
    heads = remote_heads(url)
    if main not in heads:
        raise StagingError(f"{redact_url(url)} has no branch {main!r}: cannot tell what is merged")
    wanted = sorted({b for b in branches if b in heads and b != main and BRANCH.fullmatch(b)})
    if not wanted:
        return BranchFacts(heads, frozenset())
    with tempfile.TemporaryDirectory(prefix="staging-reap-") as tmp:
        _git(["init", "--bare", "--quiet", tmp], url)
        refspecs = [f"+refs/heads/{b}:refs/heads/{b}" for b in [main, *wanted]]
        _git(["fetch", "--quiet", "--no-tags", "--filter=blob:none", url, *refspecs], url, cwd=tmp)
        listed = _git(
            [
                "for-each-ref",
                f"--merged=refs/heads/{main}",
                "--format=%(refname:lstrip=2) %(objectname)",
                "refs/heads/",
            ],
            url,
            cwd=tmp,
        )
        mainline = set(
            _git(["rev-list", "--first-parent", f"refs/heads/{main}"], url, cwd=tmp).split()
        )
    merged = frozenset(
        name
        for name, sha in (line.split() for line in listed.splitlines() if line.strip())
        if name in wanted and sha not in mainline
    )
    return BranchFacts(heads, merged)
