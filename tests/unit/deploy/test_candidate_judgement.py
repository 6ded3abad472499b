"""The candidate's answers judged (pure): only its own commit with a 200 passes; any other
answer fails at once, since the process that gave it is the new release's."""

from __future__ import annotations

import pytest

from staging_ops.claims.model import failed_deploy_detail
from staging_ops.deploy.candidate import OK, judge_health, judge_version

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
    ("status", "verdict"), [(200, OK), (503, "/airflow/health answers HTTP 503")]
)
def test_judge_health(status, verdict):
    assert judge_health(status) == verdict


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
