"""`invoke webhooks.test`: a correctly signed sample event, sent to a running Staging API.

The operator's check of the set-up: the secret in this shell is the server's, the URL reaches
it, and the event frees the slot it names. The payloads carry the fields the endpoints read,
shaped as GitHub's and Linear's documented examples (tests/fixtures/webhooks/ has the full
examples); the secret comes from the same environment variable the server reads.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from staging_ops.errors import BadInput, StagingError
from staging_ops.jsondoc import JSONObject
from staging_ops.web.webhooks import github, linear
from staging_ops.web.webhooks.decision import hmac_hex
from staging_ops.web.webhooks.routes import GITHUB_SECRET_ENV, LINEAR_SECRET_ENV, PREFIX

DEFAULT_URL = "http://127.0.0.1:8700"
GITHUB_EVENTS = ("pull_request", "delete", "ping")
LINEAR_STATES = ("completed", "canceled")


def github_payload(
    event: str, repository: str, branch: str, *, merged: bool = True, number: int = 1
) -> JSONObject:
    """A `pull_request` (closed), `delete` (a branch) or `ping` event of `repository`."""
    owner = repository.split("/", 1)[0]
    repo = {
        "id": 1296269,
        "name": repository.split("/", 1)[-1],
        "full_name": repository,
        "private": True,
        "owner": {"login": owner, "type": "Organization"},
        "html_url": f"https://github.com/{repository}",
        "default_branch": "main",
    }
    sender = {"login": "staging-ops-test", "type": "User"}
    if event == "ping":
        return {"zen": "Keep it logically awesome.", "hook_id": 1, "repository": repo}
    if event == "delete":
        return {
            "ref": branch,
            "ref_type": "branch",
            "pusher_type": "user",
            "repository": repo,
            "sender": sender,
        }
    return {
        "action": "closed",
        "number": number,
        "pull_request": {
            "url": f"https://api.github.com/repos/{repository}/pulls/{number}",
            "html_url": f"https://github.com/{repository}/pull/{number}",
            "number": number,
            "state": "closed",
            "title": f"Sample PR from {branch}",
            "merged": merged,
            "merged_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) if merged else None,
            "head": {"label": f"{owner}:{branch}", "ref": branch, "repo": repo},
            "base": {"label": f"{owner}:main", "ref": "main", "repo": repo},
        },
        "repository": repo,
        "sender": sender,
    }


def linear_payload(task: str, state: str, *, now_ms: int | None = None) -> JSONObject:
    """An Issue `update` that moved `task` to a `state` ("completed"/"canceled") state."""
    stamp = int(time.time() * 1000) if now_ms is None else now_ms
    team, number = task.split("-", 1)
    url = f"https://linear.app/justapply/issue/{task.lower()}"
    return {
        "action": "update",
        "actor": {"id": str(uuid.uuid4()), "type": "user", "name": "staging-ops test"},
        "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(stamp / 1000)),
        "data": {
            "id": str(uuid.uuid4()),
            "identifier": task,
            "number": int(number),
            "title": f"Sample issue {task}",
            "state": {
                "id": str(uuid.uuid4()),
                "name": "Done" if state == "completed" else "Canceled",
                "type": state,
                "color": "#5e6ad2",
            },
            "team": {"id": str(uuid.uuid4()), "key": team, "name": team},
            "url": url,
        },
        "updatedFrom": {"stateId": str(uuid.uuid4()), "updatedAt": "2025-01-01T00:00:00.000Z"},
        "url": url,
        "type": "Issue",
        "organizationId": str(uuid.uuid4()),
        "webhookTimestamp": stamp,
        "webhookId": str(uuid.uuid4()),
    }


@dataclass(frozen=True)
class Signed:
    """A request ready to send: the exact body and the headers that sign it."""

    url: str
    body: bytes
    headers: dict[str, str]


def sign(url: str, payload: Mapping[str, Any], secret: str, event: str = "") -> Signed:
    """The request GitHub (`event` given) or Linear (no `event`) would send for `payload`."""
    body = json.dumps(payload).encode()
    signature = hmac_hex(secret, body)
    if event:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/staging-ops-test",
            github.EVENT_HEADER: event,
            github.DELIVERY_HEADER: str(uuid.uuid4()),
            github.SIGNATURE_HEADER: github.SIGNATURE_PREFIX + signature,
        }
    else:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Linear-Webhook",
            "Linear-Event": str(payload.get("type", "")),
            linear.DELIVERY_HEADER: str(uuid.uuid4()),
            linear.SIGNATURE_HEADER: signature,
        }
    return Signed(url, body, headers)


def endpoint(base: str | None, source: str, env: Mapping[str, str] | None = None) -> str:
    """The webhook URL on the server at `base` (or STAGING_API_URL, or the sandbox's
    STAGING_DASHBOARD_URL, or 127.0.0.1:8700)."""
    env = os.environ if env is None else env
    root = base or env.get("STAGING_API_URL") or ""
    if not root and env.get("STAGING_DASHBOARD_URL"):
        root = env["STAGING_DASHBOARD_URL"].rstrip("/").removesuffix("/staging")
    root = (root or DEFAULT_URL).rstrip("/")
    if not root.startswith(("http://", "https://")):
        raise BadInput(f"--url {root!r} is not an http(s) URL")
    if root.endswith(f"{PREFIX}/{source}"):
        return root
    return f"{root.removesuffix('/api/staging')}{PREFIX}/{source}"


def secret_for(source: str, env: Mapping[str, str] | None = None) -> str:
    name = GITHUB_SECRET_ENV if source == "github" else LINEAR_SECRET_ENV
    secret = (os.environ if env is None else env).get(name)
    if not secret:
        raise BadInput(f"{name} is not set: export the secret the server uses")
    return secret


def send(signed: Signed, timeout: float = 15.0) -> tuple[int, JSONObject]:
    """POST it; the status and the JSON answer (or the text, as `message`)."""
    import requests

    try:
        response = requests.post(
            signed.url, data=signed.body, headers=signed.headers, timeout=timeout
        )
    except requests.RequestException as exc:
        raise StagingError(f"cannot reach {signed.url}: {type(exc).__name__}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = {"message": response.text[:200]}
    return response.status_code, answer if isinstance(answer, dict) else {"message": str(answer)}


def test_event(
    *,
    source: str,
    url: str | None,
    branch: str = "",
    task: str = "",
    event: str = "pull_request",
    unmerged: bool = False,
    state: str = "completed",
    repository: str = "",
    inventory_repository: str | None = None,
) -> tuple[int, JSONObject]:
    """Build, sign and send one sample event (what `invoke webhooks.test` does)."""
    if source == "github":
        if event not in GITHUB_EVENTS:
            raise BadInput(f"--event must be one of {', '.join(GITHUB_EVENTS)}")
        if event != "ping" and not branch:
            raise BadInput("--branch is required for a GitHub pull_request or delete event")
        repo = repository or inventory_repository
        if not repo:
            raise BadInput("--repository is required: the inventory names no github_repository")
        payload = github_payload(event, repo, branch, merged=not unmerged)
        signed = sign(endpoint(url, source), payload, secret_for(source), event)
    elif source == "linear":
        from staging_ops.slots.model import parse_task

        if state not in LINEAR_STATES:
            raise BadInput(f"--state must be one of {', '.join(LINEAR_STATES)}")
        payload = linear_payload(parse_task(task), state)
        signed = sign(endpoint(url, source), payload, secret_for(source))
    else:
        raise BadInput("choose --github or --linear")
    return send(signed)
