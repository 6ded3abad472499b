"""A bare git repository of examples/sample-app with good and deliberately broken branches.

The sandbox droplet deploys from it and the tests push extra commits to it. Everything is
built with the ``git`` command line in a temporary work tree, isolated from the user's and
the system's git configuration, with a fixed author, committer and date: the same source
always gives the same commit shas.

Branches (each one commit on top of ``main``):

+ main: the app as is.
+ feat-x: ``/`` shows a "Feature X" banner.
+ broken-start: ``app.py ui`` exits 1 at start (the Airflow modes still work).
+ broken-version: ``/api/version`` reports commit ``0000000deadbeef``.
+ broken-500: ``/api/version`` answers HTTP 500.
+ broken-hang: the ui listens, but ``/api/version`` never answers.
+ broken-migration: ``app.py migrate`` fails on a migration with invalid SQL.
+ new-deps: ``requirements.txt`` changes (comments only: still no packages to install).

Example::

    shas = build_sample_repo(Path(".sandbox/git/sample-app.git"))
    new_sha = push_branch(Path(".sandbox/git/sample-app.git"), "feat-y", {"NOTES.md": "y\\n"})
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

DEFAULT_SOURCE = Path(__file__).resolve().parent.parent / "examples" / "sample-app"
MAIN_BRANCH = "main"
WRONG_COMMIT = "0000000deadbeef"
FEATURE_BANNER = '<div class="banner">Feature X</div>'

_FIXED_DATE = "2024-01-01T12:00:00+00:00"
_IGNORED_NAMES = ("__pycache__", "*.pyc", ".git", ".venv")


class SampleRepoError(RuntimeError):
    """A git command failed, or a branch edit no longer matches the sample app's source."""


def git_env() -> dict[str, str]:
    """The environment for every git command: no outside config, fixed identity and dates."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="Sample App Bot",
        GIT_AUTHOR_EMAIL="sample-app@staging.invalid",
        GIT_AUTHOR_DATE=_FIXED_DATE,
        GIT_COMMITTER_NAME="Sample App Bot",
        GIT_COMMITTER_EMAIL="sample-app@staging.invalid",
        GIT_COMMITTER_DATE=_FIXED_DATE,
        GIT_TERMINAL_PROMPT="0",
    )
    return env


def git(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Run ``git args`` in ``cwd`` (init.defaultBranch=main, no signing); return stdout."""
    command = [
        "git",
        "-c",
        f"init.defaultBranch={MAIN_BRANCH}",
        "-c",
        "commit.gpgsign=false",
        "-c",
        "core.hooksPath=" + os.devnull,
        *args,
    ]
    done = subprocess.run(
        command, cwd=cwd, input=stdin, capture_output=True, env=git_env(), check=False
    )
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()
        raise SampleRepoError(f"git {' '.join(args)} failed in {cwd}: {detail}")
    return done.stdout


def replace_once(path: Path, old: str, new: str) -> None:
    """Replace the single occurrence of ``old`` in ``path`` by ``new``; fail if not exactly one."""
    text = path.read_text()
    count = text.count(old)
    if count != 1:
        raise SampleRepoError(f"{path.name}: expected 1 occurrence of {old!r}, found {count}")
    path.write_text(text.replace(old, new))


def _feat_x(tree: Path) -> str:
    replace_once(tree / "app.py", "<main>\n", f"<main>\n{FEATURE_BANNER}\n")
    return "feat-x: show a Feature X banner on /"


def _broken_start(tree: Path) -> str:
    replace_once(
        tree / "app.py",
        '    config = read_ui_config()\n    serve(\n        "ui",',
        '    raise SystemExit("ui: crashed at start (broken-start)")\n'
        '    config = read_ui_config()\n    serve(\n        "ui",',
    )
    return "broken-start: the ui exits 1 at start"


def _broken_version(tree: Path) -> str:
    replace_once(tree / "app.py", '"commit": config.commit,', f'"commit": "{WRONG_COMMIT}",')
    return "broken-version: /api/version reports the wrong commit"


_VERSION_ROUTE = '"/api/version": lambda: json_response(version_payload(config)),'


def _broken_500(tree: Path) -> str:
    replace_once(
        tree / "app.py",
        _VERSION_ROUTE,
        '"/api/version": lambda: (500, "text/plain; charset=utf-8", b"broken-500\\n"),',
    )
    return "broken-500: /api/version answers HTTP 500"


def _broken_hang(tree: Path) -> str:
    replace_once(
        tree / "app.py",
        _VERSION_ROUTE,
        '"/api/version": lambda: __import__("time").sleep(3600) or json_response({}),',
    )
    return "broken-hang: the ui listens, /api/version never answers"


def _broken_migration(tree: Path) -> str:
    replace_once(
        tree / "app.py",
        "    ),\n]\n",
        '    ),\n    ("0002_broken", "ALTER TABLE no_such_table ADD COLUMN x integer;"),\n]\n',
    )
    return "broken-migration: add a migration that fails"


def _new_deps(tree: Path) -> str:
    requirements = tree / "requirements.txt"
    requirements.write_text(requirements.read_text() + "# new-deps: pinned tooling changed\n")
    return "new-deps: requirements.txt changed"


# branch -> edit of the work tree (checked out at main) returning the commit message.
BRANCH_EDITS: dict[str, Callable[[Path], str]] = {
    "feat-x": _feat_x,
    "broken-start": _broken_start,
    "broken-version": _broken_version,
    "broken-500": _broken_500,
    "broken-hang": _broken_hang,
    "broken-migration": _broken_migration,
    "new-deps": _new_deps,
}
BRANCHES: tuple[str, ...] = (MAIN_BRANCH, *BRANCH_EDITS)


def _remove(path: Path) -> None:
    """Remove whatever is at ``path`` (directory, file or symlink); nothing if absent."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _copy_source(source: Path, tree: Path, ignored: tuple[str, ...] = ()) -> None:
    """Copy the app into ``tree`` without caches (nor ``ignored`` names), every file 0644."""
    shutil.copytree(source, tree, ignore=shutil.ignore_patterns(*_IGNORED_NAMES, *ignored))
    for path in tree.rglob("*"):
        if path.is_file():
            path.chmod(0o644)


def _commit_all(tree: Path, message: str) -> None:
    git(tree, "add", "--all")
    git(tree, "commit", "--quiet", "--allow-empty", "-m", message)


def branch_shas(bare_repo: Path) -> dict[str, str]:
    """{branch: commit sha} for every branch of ``bare_repo``."""
    out = git(bare_repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
    return dict(line.split(" ", 1) for line in out.decode().splitlines() if line)


def resolve(bare_repo: Path, ref: str) -> str:
    """The commit sha that ``ref`` (branch, tag or sha) names in ``bare_repo``."""
    try:
        out = git(bare_repo.absolute(), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except SampleRepoError:
        raise SampleRepoError(f"{bare_repo}: no commit named {ref!r}") from None
    return out.decode().strip()


def build_sample_repo(bare_repo: Path, source: Path | None = None) -> dict[str, str]:
    """Create a bare repository at ``bare_repo`` from the sample app; return {branch: sha}.

    + bare_repo: where to create it; anything already there is removed first.
    + source: the app directory (default: examples/sample-app of this checkout).

    ``main`` is the app as is; every other branch in BRANCHES is main plus one commit.
    """
    source = DEFAULT_SOURCE if source is None else source
    if not (source / "app.py").is_file():
        raise SampleRepoError(f"{source} is not the sample app (no app.py)")
    branches = {branch: (MAIN_BRANCH, edit) for branch, edit in BRANCH_EDITS.items()}
    return build_repo(bare_repo, source, branches, main_message="sample app")


def build_repo(
    bare_repo: Path,
    source: Path,
    branches: Mapping[str, tuple[str, Callable[[Path], str]]],
    main_message: str,
    ignored: tuple[str, ...] = (),
) -> dict[str, str]:
    """A bare repository at ``bare_repo``: ``main`` is ``source``, plus one commit per branch.

    + bare_repo: where to create it; anything already there is removed first.
    + source: the directory committed as ``main`` (caches and ``ignored`` names left out).
    + branches: {branch: (base branch, edit)}, in creation order (a base is created before
      the branches on it); each edit changes the work tree checked out at its base and
      returns the commit message.
    + main_message: the commit message of ``main``.

    Returns {branch: sha} of every branch.
    """
    bare_repo = bare_repo.absolute()
    _remove(bare_repo)
    with tempfile.TemporaryDirectory(prefix="sample-repo-") as tmp:
        tree = Path(tmp) / "work"
        _copy_source(source, tree, ignored)
        git(tree, "init", "--quiet")
        _commit_all(tree, main_message)
        for branch, (base, edit) in branches.items():
            git(tree, "checkout", "--quiet", "-b", branch, base)
            _commit_all(tree, edit(tree))
        bare_repo.parent.mkdir(parents=True, exist_ok=True)
        git(bare_repo.parent, "init", "--quiet", "--bare", str(bare_repo))
        git(tree, "push", "--quiet", "--mirror", str(bare_repo))
    return branch_shas(bare_repo)


def _checked_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise SampleRepoError(f"file path {name!r} must be relative and stay inside the repo")
    return path


def push_branch(
    bare_repo: Path,
    branch: str,
    files: Mapping[str, str],
    base: str = MAIN_BRANCH,
    message: str | None = None,
) -> str:
    """Commit ``files`` on top of ``base`` and push that commit as ``branch``; return its sha.

    + bare_repo: a repository made by build_sample_repo.
    + branch: the branch to create or move (force-pushed: it need not descend from ``base``).
    + files: {relative path: new content}; files not named are kept as they are in ``base``.
    + base: the branch (or any commit-ish) to start from.
    + message: the commit message (default: names the changed files).
    """
    bare_repo = bare_repo.absolute()
    with tempfile.TemporaryDirectory(prefix="sample-push-") as tmp:
        tree = Path(tmp) / "work"
        base_sha = resolve(bare_repo, base)
        git(Path(tmp), "clone", "--quiet", "--no-checkout", str(bare_repo), str(tree))
        git(tree, "checkout", "--quiet", "--detach", base_sha)
        for name, content in files.items():
            target = tree / _checked_relative(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        _commit_all(tree, message or f"{branch}: change {', '.join(sorted(files)) or 'nothing'}")
        git(tree, "push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}")
        return git(tree, "rev-parse", "HEAD").decode().strip()


def export_branch(bare_repo: Path, ref: str, dest: Path) -> Path:
    """Write the files of ``ref`` (a branch or sha) of ``bare_repo`` into ``dest``; return it.

    Like a release checkout without ``.git``; ``dest`` is created if needed.
    """
    archive = git(bare_repo.absolute(), "archive", "--format=tar", ref)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest
