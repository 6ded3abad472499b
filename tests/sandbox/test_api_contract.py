"""The Staging API's contract, checked by a client nobody here wrote: schemathesis reads the
served OpenAPI document and runs every check it has (server errors, status codes, schemas of
answers, data the document allows being accepted and data it forbids being refused, missing
auth, unsupported methods) in every phase, the stateful one (claim → get → release, through
the document's links) included, against the real server on a real registry database.

Bounded (examples per operation, a fixed seed), so it stays well under a minute; a failure
prints schemathesis's own report, with the request that reproduces it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from staging_ops.web.auth import mint_token
from staging_ops.web.webhooks.routes import GITHUB_SECRET_ENV, LINEAR_SECRET_ENV
from tests.sandbox.api_client import SECRET, Api, running_api

ST = str(Path(sys.executable).parent / "st")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["server deploys off", "server deploys on"])
def contract_api(
    request: pytest.FixtureRequest,
    registry_dsn: str,
    test_inventory_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Api]:
    # GitHub's endpoint configured (so unsigned requests meet its 401), Linear's not (404).
    monkeypatch.setenv(GITHUB_SECRET_ENV, "contract-test-github-secret")
    monkeypatch.delenv(LINEAR_SECRET_ENV, raising=False)
    if request.param == "server deploys on":
        # The sandbox's inventory turns them on: the deploy endpoints queue (no worker runs
        # them here) and read the sandbox droplet's releases.
        monkeypatch.setenv("STAGING_INVENTORY", str(test_inventory_path))
    else:
        monkeypatch.setenv("STAGING_INVENTORY", str(ROOT / "inventory" / "staging.toml"))
    with running_api(registry_dsn, test_inventory_path) as running:
        yield running


def test_schemathesis_finds_no_failure(contract_api: Api, tmp_path: Path) -> None:
    token = mint_token(SECRET, "contract@example.com", 3600)
    run = subprocess.run(
        [
            ST,
            "run",
            f"{contract_api.url}/api/staging/openapi.json",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            "40",
            "--seed",
            "15",
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--warnings",
            "off",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "No issues found" in report or "0 failures" in report or "passed" in report, report
    # The server still serves afterwards, and answered every generated case without a 5xx
    # (not_a_server_error is among the checks above).
    assert contract_api.call("GET", "/slots").status_code == 200
