"""The Campaign UI of examples/campaign-app: its pages and its release phase.

Real Flask (its test client), a real PostgreSQL database (the test sandbox's), the real
``python -m campaign_ui.migrate`` in a subprocess. Airflow itself is not installed in the
project's venv: its half of the release phase is exercised by the deploy tests with the
app's own venv; here ``airflow db migrate`` failing for want of Airflow is a real failure,
and the one line it must give is checked.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.campaign_repo import BROKEN_RELEASE_ERROR, build_campaign_repo
from devtools.sample_repo import export_branch
from tests.conftest import execute, free_port

APP = Path(__file__).resolve().parents[2] / "examples" / "campaign-app"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def campaign_ui(monkeypatch: pytest.MonkeyPatch):
    """The app's package, imported from examples/campaign-app, with a deploy's variables."""
    monkeypatch.syspath_prepend(str(APP))
    for name in [m for m in sys.modules if m == "campaign_ui" or m.startswith("campaign_ui.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("DEPLOYED_COMMIT", COMMIT)
    monkeypatch.setenv("DEPLOYED_BRANCH", "main")
    monkeypatch.setenv("SLOT_IDENTIFIER", "staging-4")
    return importlib.import_module("campaign_ui")


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """main and broken-release exported from the campaign repository, as release dirs."""
    root = tmp_path_factory.mktemp("campaign")
    bare = root / "campaign-app.git"
    build_campaign_repo(bare)
    return {b: export_branch(bare, b, root / b) for b in ("main", "broken-release")}


def run_migrate(release: Path, database_url: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "campaign_ui.migrate"],
        cwd=release,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_pages_show_the_deployed_version_and_the_campaigns(campaign_ui, registry_dsn, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", registry_dsn)
    migrate = importlib.import_module("campaign_ui.migrate")
    assert migrate.migrate_app_schema() == ["0001_campaigns"]
    client = importlib.import_module("campaign_ui.wsgi").create_app().test_client()

    version = client.get("/api/version")
    assert version.status_code == 200
    assert version.get_json() == {"commit": COMMIT, "branch": "main", "slot": "staging-4"}
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<td>Welcome series</td><td>active</td>" in html
    assert "<footer>main · 0123456 · staging-4</footer>" in html
    health = client.get("/health")
    assert (health.status_code, health.get_data(as_text=True)) == (200, "ok\n")


def test_a_database_down_fails_only_the_page_and_never_shows_the_url(campaign_ui, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:s3cret@127.0.0.1:{free_port()}/nothing")
    client = importlib.import_module("campaign_ui.wsgi").create_app().test_client()
    page = client.get("/")
    assert page.status_code == 503
    html = page.get_data(as_text=True)
    assert "Database unavailable" in html
    assert "s3cret" not in html
    assert client.get("/api/version").status_code == 200  # a deploy's check still answers


def test_the_schema_migration_runs_once(campaign_ui, registry_dsn, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", registry_dsn)
    migrate = importlib.import_module("campaign_ui.migrate")
    assert migrate.migrate_app_schema() == ["0001_campaigns"]
    assert migrate.migrate_app_schema() == []
    assert execute(registry_dsn, "SELECT id FROM campaign_migrations") == [("0001_campaigns",)]
    assert execute(registry_dsn, "SELECT count(*) FROM campaigns") == [(1,)]


def test_release_phase_reports_airflow_failing_in_one_line(releases, registry_dsn):
    done = run_migrate(releases["main"], registry_dsn)
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("migrate: airflow db migrate exited 1: ")
    assert "No module named airflow" in line  # this venv has no Airflow: a real failure
    # The app's own schema was migrated before Airflow's step.
    assert execute(registry_dsn, "SELECT id FROM campaign_migrations") == [("0001_campaigns",)]


def test_broken_release_fails_on_its_schema_before_airflow(releases, registry_dsn):
    done = run_migrate(releases["broken-release"], registry_dsn)
    assert done.returncode == 1
    assert done.stderr == f"migrate: campaign schema failed: {BROKEN_RELEASE_ERROR}\n"
    # 0001 committed on its own; the failed 0002 left nothing behind.
    assert execute(registry_dsn, "SELECT id FROM campaign_migrations") == [("0001_campaigns",)]


def test_release_phase_without_database_url_exits_2(releases):
    done = run_migrate(releases["main"], None)
    assert (done.returncode, done.stderr) == (2, "migrate: DATABASE_URL is not set\n")


def test_release_phase_with_an_unreachable_database_says_so_without_the_password(releases):
    url = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/nothing"
    done = run_migrate(releases["main"], url)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("migrate: campaign schema failed: ")
    assert "Connection refused" in line
    assert "s3cret" not in line
