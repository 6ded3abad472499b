"""GitHub: a Deployment per slot and commit (`environment = staging-N`, transient), and its
statuses: `in_progress` when a deploy starts, `success` or `failure` when it ends (a rollback
likewise), `inactive` when the slot is released. The PR then shows "View deployment" with
the slot's URL and the deploy's state.

The request bodies are pure (table-tested, and validated against GitHub's OpenAPI
description by the tests' stand-in); `deliver` sends what one event needs, keeping the
Deployment's id per slot and commit so that an event delivered twice makes no second one."""

from __future__ import annotations

import requests

from staging_ops.integrations.config import Service
from staging_ops.integrations.events import FAILED, RELEASED, STARTED, SUCCEEDED, Event
from staging_ops.integrations.http import DeliveryError, post_json
from staging_ops.integrations.store import DeploymentStore
from staging_ops.jsondoc import JSONObject

API_VERSION = "2022-11-28"
DESCRIPTION_MAX = 140  # GitHub's limit on a status's description
STATE = {STARTED: "in_progress", SUCCEEDED: "success", FAILED: "failure", RELEASED: "inactive"}


def deployment_body(event: Event) -> JSONObject:
    """POST /repos/{owner}/{repo}/deployments: the commit, to the slot's environment. No
    auto-merge and no required status contexts: staging deploys a branch as it is."""
    return {
        "ref": event.commit,
        "task": "deploy",
        "auto_merge": False,
        "required_contexts": [],
        "environment": event.environment,
        "transient_environment": True,
        "production_environment": False,
        "description": _short(f"{event.what} on {event.environment}"),
        "payload": {"slot": event.slot_id, "task": event.task or "", "branch": event.branch},
    }


def status_body(event: Event, state: str) -> JSONObject:
    """POST .../deployments/{id}/statuses: `state`, the slot's URL and the dashboard's page."""
    body: JSONObject = {
        "state": state,
        "environment": event.environment,
        "environment_url": event.url,
        "description": _short(describe(event, state)),
    }
    if event.log_url:
        body["log_url"] = event.log_url
    return body


def describe(event: Event, state: str) -> str:
    action = "rollback to" if event.rollback else "deploy of"
    if state == "in_progress":
        return f"{action} {event.what} running"
    if state == "success":
        return f"{event.what} serves, verified"
    if state == "failure":
        where = f" at {event.step}" if event.step else ""
        return f"{action} {event.what} failed{where}"
    return f"{event.environment} released" + (f" by {event.by}" if event.by else "")


def _short(text: str) -> str:
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


class GitHub:
    """The two calls, on one session."""

    def __init__(self, service: Service, session: requests.Session | None = None) -> None:
        self.service = service
        self.session = session or requests.Session()
        self.headers = {
            "Authorization": f"Bearer {service.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "staging-ops",
        }

    def create_deployment(self, repository: str, body: JSONObject) -> int:
        url = f"{self.service.url}/repos/{repository}/deployments"
        status, data = post_json(self.session, url, body, self.headers, "GitHub deployment")
        if status != 201 or not isinstance(data, dict) or not isinstance(data.get("id"), int):
            # 202: GitHub merged the default branch first (never with auto_merge false).
            raise DeliveryError(f"GitHub deployment: HTTP {status}, no deployment", retryable=False)
        return data["id"]

    def create_status(self, repository: str, ident: int, body: JSONObject) -> None:
        url = f"{self.service.url}/repos/{repository}/deployments/{ident}/statuses"
        post_json(self.session, url, body, self.headers, f"GitHub deployment {ident} status")


def deliver(event: Event, client: GitHub, store: DeploymentStore) -> str:
    """Send what `event` means to GitHub; a line saying what was done."""
    repo = event.repository
    if not repo:
        return "no github_repository in the inventory: nothing to tell"
    if event.kind == RELEASED:
        active = store.active(repo, event.slot_id)
        for ident in active:
            client.create_status(repo, ident, status_body(event, "inactive"))
            store.set_state(repo, ident, "inactive")
        return f"{len(active)} deployment(s) inactive"
    ident = store.deployment_id(repo, event.slot_id, event.commit)
    created = ident is None
    if ident is None:
        ident = client.create_deployment(repo, deployment_body(event))
        store.keep(repo, event.slot_id, event.commit, ident)
    states = [STATE[event.kind]]
    if created and event.kind != STARTED:
        states.insert(0, "in_progress")  # its start was not told (a rollback, or GitHub was off)
    for state in states:
        client.create_status(repo, ident, status_body(event, state))
        store.set_state(repo, ident, state)
    return f"deployment {ident}: {' -> '.join(states)}"
