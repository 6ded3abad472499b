"""The sample app (examples/sample-app) and its bare repository (staging_ops/sample_repo.py).

No mocks: real git, real app processes on free loopback ports, a real PostgreSQL cluster.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devtools.sample_repo import (
    BRANCHES,
    FEATURE_BANNER,
    WRONG_COMMIT,
    SampleRepoError,
    build_sample_repo,
    export_branch,
    push_branch,
)
from tests.conftest import free_port

START_TIMEOUT = 10.0


# --- helpers -------------------------------------------------------------------------------


def git_out(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def app_env(**values: str) -> dict[str, str]:
    """A minimal environment for app.py: PATH plus ``values``."""
    return {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **values}


def run_app(app_dir: Path, mode: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "app.py", mode],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def http_get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of GET ``url``; 4xx/5xx are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (http only)
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


@contextmanager
def running(
    app_dir: Path, mode: str, env: dict[str, str], ready_url: str | None
) -> Iterator[subprocess.Popen[str]]:
    """Run ``app.py mode`` until the block ends (SIGTERM, then kill); wait for ``ready_url``."""
    log = (app_dir / f"{mode}.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "app.py", mode],
        cwd=app_dir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        if ready_url:
            wait_ready(proc, ready_url, app_dir / f"{mode}.log")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def wait_ready(proc: subprocess.Popen[str], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"app exited with {proc.returncode}: {log.read_text()}")
        try:
            http_get(url)
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{url} not ready after {START_TIMEOUT}s: {log.read_text()}")


def ui_env(port: int, branch: str, commit: str) -> dict[str, str]:
    return app_env(
        UI_PORT=str(port),
        DEPLOYED_COMMIT=commit,
        DEPLOYED_BRANCH=branch,
        SLOT_IDENTIFIER="staging-3",
    )


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    bare = tmp_path_factory.mktemp("git") / "sample-app.git"
    return bare, build_sample_repo(bare)


@pytest.fixture
def export(sample_repo: tuple[Path, dict[str, str]], tmp_path: Path):
    """export(branch) -> a directory holding that branch's files (like a release checkout)."""

    def _export(branch: str) -> Path:
        return export_branch(sample_repo[0], branch, tmp_path / branch)

    return _export


def psql(dsn: str, sql: str) -> str:
    return subprocess.run(
        ["psql", dsn, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


_db_numbers = count(1)


@pytest.fixture
def database_url(postgres_admin_dsn: str) -> str:
    """A fresh, empty database on the test cluster."""
    name = f"sample_app_{os.getpid()}_{next(_db_numbers)}"
    psql(postgres_admin_dsn, f"CREATE DATABASE {name}")
    return urlsplit(postgres_admin_dsn)._replace(path=f"/{name}").geturl()


# --- the bare repository -------------------------------------------------------------------


def test_build_creates_bare_repo_with_every_branch(sample_repo):
    bare, shas = sample_repo
    assert set(shas) == set(BRANCHES)
    assert git_out(bare, "rev-parse", "--is-bare-repository") == "true"
    assert git_out(bare, "symbolic-ref", "HEAD") == "refs/heads/main"
    for branch in BRANCHES:
        assert git_out(bare, "rev-parse", branch) == shas[branch]
        if branch != "main":
            assert shas[branch] != shas["main"]
            assert git_out(bare, "rev-parse", f"{branch}^") == shas["main"], branch
            assert git_out(bare, "diff", "--stat", "main", branch), branch


def test_branches_make_their_change(sample_repo):
    bare, _ = sample_repo

    def show(branch: str, path: str) -> str:
        return git_out(bare, "show", f"{branch}:{path}")

    assert FEATURE_BANNER in show("feat-x", "app.py")
    assert FEATURE_BANNER not in show("main", "app.py")
    assert WRONG_COMMIT in show("broken-version", "app.py")
    assert "0002_broken" in show("broken-migration", "app.py")
    assert "broken-start" in show("broken-start", "app.py")
    requirements = show("new-deps", "requirements.txt")
    assert requirements != show("main", "requirements.txt")
    assert "# new-deps: pinned tooling changed" in requirements
    assert all(not line or line.startswith("#") for line in requirements.splitlines())
    assert git_out(bare, "diff", "--name-only", "main", "new-deps") == "requirements.txt"


def test_build_is_deterministic_and_replaces_what_was_there(sample_repo, tmp_path):
    bare = tmp_path / "again.git"
    bare.write_text("junk that must go")
    assert build_sample_repo(bare) == sample_repo[1]
    (bare / "stray").write_text("more junk")
    assert build_sample_repo(bare) == sample_repo[1]
    assert not (bare / "stray").exists()


def test_push_branch_adds_a_commit_on_base(sample_repo, tmp_path):
    bare = tmp_path / "push.git"
    shas = build_sample_repo(bare)
    sha = push_branch(bare, "feat-y", {"NOTES.md": "y\n", "docs/a.txt": "a\n"})
    assert git_out(bare, "rev-parse", "feat-y") == sha
    assert git_out(bare, "rev-parse", f"{sha}^") == shas["main"]
    assert git_out(bare, "show", "feat-y:docs/a.txt") == "a"
    again = push_branch(bare, "feat-x", {"NOTES.md": "x2\n"}, base="feat-x")
    assert git_out(bare, "rev-parse", f"{again}^") == shas["feat-x"]
    moved = push_branch(bare, "feat-x", {"NOTES.md": "reset\n"}, base="main")
    assert git_out(bare, "rev-parse", "feat-x") == moved
    with pytest.raises(SampleRepoError, match="no commit named"):
        push_branch(bare, "x", {"a": "b"}, base="no-such-branch")
    with pytest.raises(SampleRepoError, match="relative"):
        push_branch(bare, "x", {"../escape": "b"})


# --- the app's processes -------------------------------------------------------------------


def test_ui_serves_version_page_and_health(export, sample_repo):
    app = export("main")
    port = free_port()
    commit = sample_repo[1]["main"]
    env = ui_env(port, "main", commit)
    with running(app, "ui", env, f"http://127.0.0.1:{port}/health") as proc:
        status, ctype, body = http_get(f"http://127.0.0.1:{port}/api/version")
        assert (status, ctype) == (200, "application/json")
        assert json.loads(body) == {"commit": commit, "branch": "main", "slot": "staging-3"}
        status, ctype, body = http_get(f"http://127.0.0.1:{port}/")
        assert status == 200 and ctype.startswith("text/html")
        assert f"main &middot; {commit[:7]} &middot; staging-3" in body
        assert FEATURE_BANNER not in body
        assert http_get(f"http://127.0.0.1:{port}/health")[::2] == (200, "ok")
        assert http_get(f"http://127.0.0.1:{port}/nope")[0] == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0


def test_a_stopped_ui_finishes_the_request_it_is_answering(export, sample_repo):
    # What a deploy's hand-over relies on: SIGTERM closes the port (nginx sends new requests to
    # the candidate) but the request already taken is answered whole, not cut off.
    app = export("main")
    port = free_port()
    commit = sample_repo[1]["main"]
    with running(app, "ui", ui_env(port, "main", commit), f"http://127.0.0.1:{port}/health") as p:
        taken = socket.create_connection(("127.0.0.1", port), timeout=5)
        taken.sendall(b"GET /api/version HTTP/1.0\r\n")  # in flight: its headers not all sent
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()  # the port closed
        taken.sendall(b"Host: x\r\n\r\n")
        answer = b""
        while chunk := taken.recv(65536):
            answer += chunk
        taken.close()
        assert answer.startswith(b"HTTP/1.0 200") and commit.encode() in answer, answer
        assert p.wait(timeout=5) == 0


def test_feat_x_shows_banner(export):
    app = export("feat-x")
    port = free_port()
    with running(app, "ui", ui_env(port, "feat-x", "a" * 40), f"http://127.0.0.1:{port}/health"):
        assert FEATURE_BANNER in http_get(f"http://127.0.0.1:{port}/")[2]


def test_broken_version_reports_wrong_commit(export):
    app = export("broken-version")
    port = free_port()
    env = ui_env(port, "broken-version", "b" * 40)
    with running(app, "ui", env, f"http://127.0.0.1:{port}/health"):
        payload = json.loads(http_get(f"http://127.0.0.1:{port}/api/version")[2])
    assert payload["commit"] == WRONG_COMMIT != env["DEPLOYED_COMMIT"]


def test_broken_500_answers_500_and_broken_hang_never_answers(export):
    for branch in ("broken-500", "broken-hang"):
        app = export(branch)
        port = free_port()
        env = ui_env(port, branch, "e" * 40)
        with running(app, "ui", env, f"http://127.0.0.1:{port}/health") as proc:
            url = f"http://127.0.0.1:{port}/api/version"
            if branch == "broken-500":
                assert http_get(url)[0] == 500
            else:
                with pytest.raises(TimeoutError):
                    urllib.request.urlopen(url, timeout=1)
            # It still stops on SIGTERM, a request hanging or not.
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=5) == 0


def test_broken_start_ui_exits_nonzero_but_airflow_works(export):
    app = export("broken-start")
    done = run_app(app, "ui", ui_env(free_port(), "broken-start", "c" * 40))
    assert done.returncode == 1
    assert "broken-start" in done.stderr
    port = free_port()
    env = app_env(AIRFLOW_PORT=str(port), SLOT_IDENTIFIER="staging-3")
    with running(app, "airflow-webserver", env, f"http://127.0.0.1:{port}/airflow/health"):
        assert http_get(f"http://127.0.0.1:{port}/airflow/health")[0] == 200


def test_ui_fails_clearly_without_its_env(export):
    app = export("main")
    env = ui_env(free_port(), "main", "d" * 40)
    del env["UI_PORT"]
    done = run_app(app, "ui", env)
    assert done.returncode == 1
    assert "missing required environment variable UI_PORT" in done.stderr
    done = run_app(app, "ui", {**env, "UI_PORT": "http"})
    assert done.returncode == 1 and "not a port number" in done.stderr


def test_airflow_webserver_health_and_page(export):
    app = export("main")
    port = free_port()
    env = app_env(AIRFLOW_PORT=str(port), SLOT_IDENTIFIER="staging-7")
    url = f"http://127.0.0.1:{port}/airflow/health"
    with running(app, "airflow-webserver", env, url) as proc:
        status, ctype, body = http_get(url)
        assert (status, ctype) == (200, "application/json")
        assert json.loads(body) == {"status": "healthy", "slot": "staging-7"}
        status, ctype, body = http_get(f"http://127.0.0.1:{port}/airflow/")
        assert status == 200 and "staging-7" in body
        assert http_get(f"http://127.0.0.1:{port}/")[0] == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0


def test_airflow_scheduler_beats_and_stops_on_sigterm(export):
    app = export("main")
    env = app_env(SLOT_IDENTIFIER="staging-2")
    log = app / "airflow-scheduler.log"
    with running(app, "airflow-scheduler", env, ready_url=None) as proc:
        deadline = time.monotonic() + START_TIMEOUT
        while "heartbeat 1" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    assert "heartbeat 1 (staging-2)" in log.read_text()
    assert "stopped" in log.read_text()


# --- migrations against a real PostgreSQL --------------------------------------------------


def test_migrate_is_idempotent(export, database_url):
    app = export("main")
    env = app_env(DATABASE_URL=database_url)
    for _ in range(2):
        done = run_app(app, "migrate", env)
        assert done.returncode == 0, done.stderr
    assert psql(database_url, "SELECT name FROM app_migrations") == "0001_init"


def test_broken_migration_fails_and_records_nothing(export, database_url):
    app = export("broken-migration")
    done = run_app(app, "migrate", app_env(DATABASE_URL=database_url))
    assert done.returncode == 1
    assert "migration failed: 0002_broken" in done.stderr
    assert "no_such_table" in done.stderr
    assert psql(database_url, "SELECT name FROM app_migrations") == "0001_init"


def test_migrate_fails_clearly_when_database_is_unreachable(export):
    app = export("main")
    url = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/nothing"
    done = run_app(app, "migrate", app_env(DATABASE_URL=url))
    assert done.returncode == 1
    assert "migration failed" in done.stderr
    assert "secret" not in done.stderr
    done = run_app(app, "migrate", app_env())
    assert done.returncode == 1
    assert "missing required environment variable DATABASE_URL" in done.stderr
