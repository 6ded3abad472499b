"""The candidate's answers judged (pure): only its own commit with a 200 passes; any other
answer fails at once, since the process that gave it is the new release's."""

from __future__ import annotations

import pytest

from staging_ops.deploy.candidate import OK, judge_version
from staging_ops.processes.judge import builtin_check, judge_answer
from staging_ops.slots.model import failed_deploy_detail

COMMIT = "a" * 40


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, b'{"commit": "' + COMMIT.encode() + b'"}', OK),
        (
            200,
            b'{"commit": "0000000deadbeef"}',
            f"/api/version reports commit '0000000deadbeef', not {COMMIT}",
        ),
        (200, b"{}", f"/api/version reports commit None, not {COMMIT}"),
        (200, b"[1]", "/api/version does not answer JSON with a commit"),
        (200, b"<html>", "/api/version does not answer JSON with a commit"),
        (500, b"broken", "/api/version answers HTTP 500"),
        (404, b"", "/api/version answers HTTP 404"),
    ],
)
def test_judge_version(status, body, verdict):
    assert judge_version(status, body, COMMIT) == verdict


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, b"ok", OK),  # not JSON: a 200 from a health path that says nothing more
        (503, b"", "/airflow/health answers HTTP 503"),
        (200, b'{"metadatabase": {"status": "healthy"}, "scheduler": {"status": null}}', OK),
        (
            200,
            b'{"metadatabase": {"status": "unhealthy"}}',
            "/airflow/health: metadatabase is unhealthy",
        ),
    ],
)
def test_judge_airflow_health(status, body, verdict):
    check = builtin_check("airflow")
    assert check is not None
    assert judge_answer(check, status, body) == verdict


@pytest.mark.parametrize(
    ("branch", "commit", "step", "serving", "detail"),
    [
        (
            "feat-x",
            COMMIT,
            "candidate verify",
            "r1",
            f"feat-x@{COMMIT[:12]}: candidate verify failed; serving r1",
        ),
        ("nope", "", "fetch", "r1", "nope: fetch failed; serving r1"),
        (
            "feat-x",
            COMMIT,
            "main verify",
            "",
            f"feat-x@{COMMIT[:12]}: main verify failed; serving nothing",
        ),
    ],
)
def test_failed_deploy_detail(branch, commit, step, serving, detail):
    assert failed_deploy_detail(branch, commit, step, serving) == detail


def test_a_slow_start_reads_as_progress_not_as_a_hang(monkeypatch):
    """While a check waits on a process that is still starting, a line says what it waits for
    and for how long, on the step log's stream, never among the steps (nor with --json)."""
    import io
    from types import SimpleNamespace

    from staging_ops import output
    from staging_ops.deploy import candidate

    monkeypatch.setattr(candidate, "PROGRESS_EVERY", 0.0)
    stream = io.StringIO()
    log = output.StepLog(stream=stream)
    deployer = SimpleNamespace(log=log)
    waiting = candidate.Waiting(deployer, "airflow-webserver-candidate on the candidate")
    waiting.tick("waiting for /airflow/health to answer")
    line = stream.getvalue()
    assert "airflow-webserver-candidate on the candidate: waiting for /airflow/health" in line
    assert line.rstrip().endswith("(0s)") and log.steps == [] and log.lines == []
    quiet = output.StepLog(quiet=True, stream=io.StringIO())
    candidate.Waiting(SimpleNamespace(log=quiet), "x").tick("y")
    assert quiet.stream.getvalue() == ""


def test_airflow_3s_health_path_is_asked_only_after_the_2x_one_answers_404():
    from staging_ops.processes.judge import AIRFLOW3_HEALTH, airflow_fallback

    assert airflow_fallback("/airflow/health", 404) == AIRFLOW3_HEALTH
    assert airflow_fallback("/airflow/health", 200) is None
    assert airflow_fallback("/airflow/health", 503) is None
    assert airflow_fallback("/health", 404) is None
