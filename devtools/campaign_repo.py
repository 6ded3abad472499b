"""A bare git repository of examples/campaign-app: the real app, on Airflow 2 and 3, and broken.

Built like devtools/sample_repo.py (same deterministic git plumbing: fixed identity and
dates, the same source always gives the same shas). ``main`` is examples/campaign-app
without its ``variants/`` directory, which holds the files the other branches add:

+ main: Airflow 2.10.5, no Procfile (staging-ops's inventory ``[app]`` commands run it).
+ airflow3: Airflow 3 (its requirements and constraints), with a Procfile and app.json.
+ feat-x: main plus a "Feature X" banner on ``/``.
+ broken-release: main; the release phase (``python -m campaign_ui.migrate``) fails on a bad
  migration, before ``airflow db migrate``.
+ broken-web: main; gunicorn hangs before it listens (a ``gunicorn.conf.py`` hook).
+ broken-airflow: main; ``airflow webserver`` exits 1 at start.
+ broken-scheduler: main; ``airflow scheduler`` exits 1 about 2.5 s after start.
+ crashloop-dag-processor: airflow3; ``airflow dag-processor`` exits 1 about 2 s after every
  start.
+ bad-procfile: main plus a Procfile whose line 6 has no ``type:``.

The Airflow crashes come from ``plugins/airflow_local_settings.py`` (Airflow's own start-up
hook), so they need ``AIRFLOW__CORE__PLUGINS_FOLDER=<release>/plugins``, as staging-ops sets.

Example::

    shas = build_campaign_repo(Path(".sandbox/git/campaign-app.git"))
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from devtools.sample_repo import MAIN_BRANCH, SampleRepoError, build_repo, replace_once

DEFAULT_SOURCE = Path(__file__).resolve().parent.parent / "examples" / "campaign-app"
VARIANTS = "variants"
FEATURE_BANNER = '<div class="banner">Feature X</div>'
AIRFLOW3_BRANCH = "airflow3"
CRASH_SETTINGS = "plugins/airflow_local_settings.py"
# The message the release phase fails with on broken-release (psycopg2's, first line).
BROKEN_RELEASE_ERROR = 'relation "no_such_table" does not exist'

Edit = Callable[[Path], str]


def _overlay(variants: Path, name: str) -> Callable[[Path], None]:
    """Copy every file of ``variants/name`` into the work tree, keeping relative paths."""

    def copy(tree: Path) -> None:
        source = variants / name
        files = sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        if not files:
            raise SampleRepoError(f"{source}: no files to add")
        for path in files:
            target = tree / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            target.chmod(0o644)

    return copy


def _crash(variants: Path, command: str, after_seconds: float) -> Callable[[Path], None]:
    """Add the local-settings hook that makes ``airflow command`` exit 1 after that long."""

    def add(tree: Path) -> None:
        target = tree / CRASH_SETTINGS
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(variants / "crash" / "airflow_local_settings.py", target)
        target.chmod(0o644)
        replace_once(target, 'CRASH_COMMAND = "webserver"', f"CRASH_COMMAND = {command!r}")
        replace_once(target, "CRASH_AFTER_SECONDS = 0.0", f"CRASH_AFTER_SECONDS = {after_seconds}")

    return add


def _feat_x(tree: Path) -> str:
    replace_once(tree / "campaign_ui" / "wsgi.py", "<main>\n", f"<main>\n{FEATURE_BANNER}\n")
    return "feat-x: show a Feature X banner on /"


def _broken_release(tree: Path) -> str:
    replace_once(
        tree / "campaign_ui" / "migrate.py",
        "    ),\n)\n",
        '    ),\n    ("0002_broken", "ALTER TABLE no_such_table ADD COLUMN x integer"),\n)\n',
    )
    return "broken-release: add a migration that fails"


def campaign_branches(source: Path) -> dict[str, tuple[str, Edit]]:
    """{branch: (base, edit)} for every branch but main, in creation order."""
    variants = source / VARIANTS

    def step(action: Callable[[Path], None], message: str) -> Edit:
        def edit(tree: Path) -> str:
            action(tree)
            return message

        return edit

    return {
        AIRFLOW3_BRANCH: (
            MAIN_BRANCH,
            step(
                _overlay(variants, "airflow3"),
                "airflow3: Airflow 3.3.2 with a Procfile and app.json",
            ),
        ),
        "feat-x": (MAIN_BRANCH, _feat_x),
        "broken-release": (MAIN_BRANCH, _broken_release),
        "broken-web": (
            MAIN_BRANCH,
            step(_overlay(variants, "broken-web"), "broken-web: gunicorn never listens"),
        ),
        "broken-airflow": (
            MAIN_BRANCH,
            step(
                _crash(variants, "webserver", 0.0), "broken-airflow: the webserver exits at start"
            ),
        ),
        "broken-scheduler": (
            MAIN_BRANCH,
            step(_crash(variants, "scheduler", 2.5), "broken-scheduler: exits 2.5 s after start"),
        ),
        "crashloop-dag-processor": (
            AIRFLOW3_BRANCH,
            step(
                _crash(variants, "dag-processor", 2.0),
                "crashloop-dag-processor: the dag-processor exits 2 s after every start",
            ),
        ),
        "bad-procfile": (
            MAIN_BRANCH,
            step(_overlay(variants, "bad-procfile"), "bad-procfile: a Procfile line without type"),
        ),
    }


BRANCHES: tuple[str, ...] = (MAIN_BRANCH, *campaign_branches(DEFAULT_SOURCE))


def build_campaign_repo(bare_repo: Path, source: Path | None = None) -> dict[str, str]:
    """Create a bare repository at ``bare_repo`` from the campaign app; return {branch: sha}.

    + bare_repo: where to create it; anything already there is removed first.
    + source: the app directory (default: examples/campaign-app of this checkout).
    """
    source = DEFAULT_SOURCE if source is None else source
    if not (source / "campaign_ui" / "wsgi.py").is_file():
        raise SampleRepoError(f"{source} is not the campaign app (no campaign_ui/wsgi.py)")
    return build_repo(
        bare_repo,
        source,
        campaign_branches(source),
        main_message="campaign app (Airflow 2.10.5)",
        ignored=(VARIANTS,),
    )
