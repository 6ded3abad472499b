"""devtools/campaign_repo.py: the bare repository of examples/campaign-app and its branches.

Real git; the failure branches' Airflow crash hook runs in a real Python process (Airflow
imports it by file; here it is run the same way, without Airflow, so the test stays fast).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools import campaign_venv
from devtools.campaign_repo import (
    AIRFLOW3_BRANCH,
    BRANCHES,
    BROKEN_RELEASE_ERROR,
    CRASH_SETTINGS,
    FEATURE_BANNER,
    build_campaign_repo,
)
from devtools.sample_repo import SampleRepoError, export_branch

APP_FILES = {
    "campaign_ui/__init__.py",
    "campaign_ui/db.py",
    "campaign_ui/migrate.py",
    "campaign_ui/wsgi.py",
    "dags/campaign_report.py",
    "plugins/README.md",
    "README.md",
    "requirements.txt",
    "constraints.txt",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    bare = tmp_path_factory.mktemp("campaign") / "campaign-app.git"
    return bare, build_campaign_repo(bare)


@pytest.fixture(scope="module")
def trees(repo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every branch exported, as a release directory would be."""
    root = tmp_path_factory.mktemp("exports")
    return {branch: export_branch(repo[0], branch, root / branch) for branch in repo[1]}


def files_of(tree: Path) -> set[str]:
    return {str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file()}


def test_every_branch_is_built_and_the_build_is_deterministic(repo, tmp_path):
    shas = repo[1]
    assert set(shas) == set(BRANCHES)
    assert len(set(shas.values())) == len(shas)  # each branch is its own commit
    assert build_campaign_repo(tmp_path / "again.git") == shas


def test_main_is_the_airflow2_app_without_procfile_or_variants(trees):
    main = trees["main"]
    assert files_of(main) == APP_FILES
    requirements = (main / "requirements.txt").read_text()
    assert "-c constraints.txt" in requirements
    assert "apache-airflow[postgres]==2.10.5" in requirements
    assert "apache-airflow==2.10.5\n" in (main / "constraints.txt").read_text()


def test_airflow3_brings_its_pins_procfile_and_app_json(trees):
    tree = trees[AIRFLOW3_BRANCH]
    assert files_of(tree) == APP_FILES | {"Procfile", "app.json"}
    assert "apache-airflow[postgres]==3.3.2" in (tree / "requirements.txt").read_text()
    assert "apache-airflow==3.3.2\n" in (tree / "constraints.txt").read_text()
    types = {}
    for line in (tree / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            types[name] = command.strip()
    assert set(types) == {"release", "web", "airflow", "scheduler", "dag-processor"}
    # Told only $PORT, as on Heroku: staging-ops points them at loopback.
    assert types["airflow"].startswith("airflow api-server --port $PORT")
    assert "--bind" not in types["web"] and "--host" not in types["airflow"]
    assert "--skip-serve-logs" in types["scheduler"]
    checks = json.loads((tree / "app.json").read_text())["healthchecks"]
    assert checks["web"][0]["path"] == "/api/version"
    assert checks["airflow"][0]["path"] == "/airflow/api/v2/monitor/health"
    assert checks["airflow"][0]["x-components"] == ["metadatabase"]


def test_each_failure_branch_changes_what_it_says(trees):
    assert FEATURE_BANNER in (trees["feat-x"] / "campaign_ui/wsgi.py").read_text()
    assert "no_such_table" in (trees["broken-release"] / "campaign_ui/migrate.py").read_text()
    assert "no_such_table" in BROKEN_RELEASE_ERROR
    assert files_of(trees["broken-web"]) == APP_FILES | {"gunicorn.conf.py"}
    for branch, command in (
        ("broken-airflow", "webserver"),
        ("broken-scheduler", "scheduler"),
        ("crashloop-dag-processor", "dag-processor"),
    ):
        assert f"CRASH_COMMAND = {command!r}" in (trees[branch] / CRASH_SETTINGS).read_text()
    assert "Procfile" in files_of(trees["crashloop-dag-processor"])  # built on airflow3
    assert "Procfile" not in files_of(trees["broken-scheduler"])  # built on main
    bad = (trees["bad-procfile"] / "Procfile").read_text().splitlines()
    assert bad[5].startswith("scheduler airflow scheduler")  # line 6: no `type:`
    assert all(":" in line for line in bad[1:4])


def run_hook(tree: Path, command: str, then_run: float = 0.0) -> tuple[int, str, float]:
    """Import the crash hook as ``airflow COMMAND`` would, then run ``then_run`` s more."""
    started = time.monotonic()
    code = f"import time, airflow_local_settings; time.sleep({then_run})"
    done = subprocess.run(
        [sys.executable, "-c", code, command],
        cwd=tree / "plugins",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, done.stderr.strip(), time.monotonic() - started


def test_the_crash_hook_kills_only_its_command_and_when_it_says(trees, tmp_path):
    code, err, _ = run_hook(trees["broken-airflow"], "webserver")
    assert (code, err) == (1, "airflow webserver: crashed (failure branch)")
    assert run_hook(trees["broken-airflow"], "db")[:2] == (0, "")  # the release phase runs
    shipped = trees["crashloop-dag-processor"] / "plugins" / "airflow_local_settings.py"
    assert "CRASH_AFTER_SECONDS = 2.0\n" in shipped.read_text()  # ~2 s after the start
    # The delay itself, shorter (a copy): the process lives until then, not at once nor for
    # good.
    (tmp_path / "plugins").mkdir()
    text = shipped.read_text().replace("CRASH_AFTER_SECONDS = 2.0", "CRASH_AFTER_SECONDS = 0.4")
    (tmp_path / "plugins" / shipped.name).write_text(text)
    code, err, took = run_hook(tmp_path, "dag-processor", 10)
    assert (code, err) == (1, "airflow dag-processor: crashed (failure branch)")
    assert 0.35 <= took < 10  # the start time is known to a clock tick (10 ms)


def test_a_source_that_is_not_the_campaign_app_is_refused(tmp_path):
    with pytest.raises(SampleRepoError, match="not the campaign app"):
        build_campaign_repo(tmp_path / "x.git", source=tmp_path)


def test_the_venv_helper_refuses_a_directory_without_requirements(tmp_path, capsys):
    assert campaign_venv.main([str(tmp_path), str(tmp_path / "venv")]) == 2
    err = capsys.readouterr().err
    assert err == f"campaign_venv: {tmp_path / 'requirements.txt'} does not exist\n"
    assert not (tmp_path / "venv").exists()
