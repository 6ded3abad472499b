"""The documented webhook payloads in tests/fixtures/webhooks/, and signing them as the services
do, for the unit and end-to-end webhook tests."""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

from staging_ops.web.webhooks.decision import hmac_hex

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "webhooks"


def fixture(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text()))


def merged_pr(branch: str, *, merged: bool = True, number: int = 42) -> dict[str, Any]:
    payload = fixture("github_pull_request_closed")
    payload["number"] = payload["pull_request"]["number"] = number
    payload["pull_request"]["head"]["ref"] = branch
    payload["pull_request"]["merged"] = merged
    return payload


def deleted_branch(branch: str) -> dict[str, Any]:
    payload = fixture("github_delete")
    payload["ref"] = branch
    return payload


def pushed(
    branch: str,
    after: str,
    *,
    forced: bool = False,
    deleted: bool = False,
    repository: str | None = None,
) -> dict[str, Any]:
    """A `push` delivery of `after` to `branch` (deleted: GitHub's zeros as `after`)."""
    payload = fixture("github_push")
    payload["ref"] = f"refs/heads/{branch}"
    payload["after"] = "0" * 40 if deleted else after
    payload["forced"], payload["deleted"] = forced, deleted
    if deleted:
        payload["head_commit"], payload["commits"] = None, []
    if repository:
        payload["repository"]["full_name"] = repository
    return payload


def linear_done(task: str, state: str = "completed", at_ms: int | None = None) -> dict[str, Any]:
    payload = fixture("linear_issue_update")
    payload["data"]["identifier"] = task
    payload["data"]["state"]["type"] = state
    payload["data"]["state"]["name"] = "Done" if state == "completed" else "Canceled"
    payload["webhookTimestamp"] = int(time.time() * 1000) if at_ms is None else at_ms
    return payload


def github_headers(
    secret: str, body: bytes, event: str, delivery: str | None = None
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac_hex(secret, body),
    }


def linear_headers(secret: str, body: bytes, delivery: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "Linear-Event": "Issue",
        "Linear-Delivery": delivery or str(uuid.uuid4()),
        "Linear-Signature": hmac_hex(secret, body),
    }
