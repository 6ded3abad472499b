"""GitHub webhooks: the signature, and which deliveries free a slot.

- signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`;
- `ping` (sent when the webhook is created) is answered;
- `pull_request` with `action: closed` and `pull_request.merged: true` frees the slot whose
  claim last deployed the PR's head branch; a PR closed without merging frees nothing, and a
  PR from a fork never does (its head branch is not ours, whatever it is called);
- `delete` with `ref_type: branch` frees the slot of that branch;
- `push` to a branch deploys the pushed commit (`after`) to the slots that hold the branch
  (routes.py queues it; a force-push deploys the new head the same way); a push that deletes
  the branch (`deleted: true`, `after` all zeros) deploys nothing, and a pushed tag nothing;
- only for `repository.full_name` equal to the inventory's `github_repository`.
"""

from __future__ import annotations

import re

from staging_ops.slots.model import BRANCH
from staging_ops.web.webhooks.decision import (
    DEPLOY,
    PING,
    RELEASE,
    Decision,
    ignore,
    link_at,
    plain_name,
    signature_matches,
    text_at,
    value_at,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
SIGNATURE_PREFIX = "sha256="
NO_COMMIT = "0" * 40  # a push's `after` when it deleted the branch
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is `sha256=` + the HMAC of `body` with `secret`."""
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    return signature_matches(secret, body, header.removeprefix(SIGNATURE_PREFIX))


def decide(event: str | None, payload: object, repository: str | None) -> Decision:
    """What the verified delivery `event` with `payload` asks of the slots of `repository`."""
    if event == "ping":
        return Decision(PING, "pong")
    if event not in ("pull_request", "delete", "push"):
        return ignore(f"event {event or '(none)'!r} is not one that frees or deploys slots")
    if not repository:
        return ignore("no [app] github_repository in the inventory: GitHub events free nothing")
    full_name = text_at(payload, "repository", "full_name")
    if (full_name or "").lower() != repository.lower():
        return ignore(f"repository {full_name or '(none)'!r} is not {repository}")
    actor = plain_name(text_at(payload, "sender", "login"))
    if event == "delete":
        return _deleted(payload, actor)
    if event == "push":
        return _pushed(payload, actor)
    return _pull_request(payload, repository, actor)


def _deleted(payload: object, actor: str | None) -> Decision:
    if text_at(payload, "ref_type") != "branch":
        return ignore("a deleted tag frees nothing")
    branch = text_at(payload, "ref")
    if not branch or not BRANCH.fullmatch(branch):
        return ignore("the deleted ref is not a branch name a slot can hold")
    link = link_at(payload, "repository", "html_url")
    return Decision(
        RELEASE,
        f"branch {branch} was deleted",
        branch=branch,
        reason=f"branch {branch} deleted on GitHub {link}".strip(),
        actor=actor,
    )


def _pushed(payload: object, actor: str | None) -> Decision:
    ref = text_at(payload, "ref") or ""
    if not ref.startswith("refs/heads/"):
        return ignore("a pushed tag deploys nothing")
    branch = ref.removeprefix("refs/heads/")
    if not BRANCH.fullmatch(branch):
        return ignore("the pushed ref is not a branch name a slot can hold")
    after = text_at(payload, "after") or ""
    if value_at(payload, "deleted") is True or after == NO_COMMIT:
        return Decision(DEPLOY, f"branch {branch} was deleted", branch=branch, actor=actor)
    if not COMMIT_SHA.fullmatch(after):
        return ignore("the push names no commit (`after`)")
    forced = " (forced)" if value_at(payload, "forced") is True else ""
    return Decision(
        DEPLOY,
        f"{after[:12]} pushed to {branch}{forced}",
        branch=branch,
        actor=actor,
        commit=after,
    )


def _pull_request(payload: object, repository: str, actor: str | None) -> Decision:
    number = value_at(payload, "pull_request", "number") or value_at(payload, "number")
    label = f"PR #{number}" if isinstance(number, int) and not isinstance(number, bool) else "PR"
    if text_at(payload, "action") != "closed":
        return ignore(f"{label}: action {text_at(payload, 'action') or '(none)'!r} frees nothing")
    if value_at(payload, "pull_request", "merged") is not True:
        return ignore(f"{label} was closed without being merged")
    head_repo = text_at(payload, "pull_request", "head", "repo", "full_name")
    if (head_repo or "").lower() != repository.lower():
        return ignore(f"{label} came from {head_repo or 'a deleted fork'}, not {repository}")
    branch = text_at(payload, "pull_request", "head", "ref")
    if not branch or not BRANCH.fullmatch(branch):
        return ignore(f"{label}: its head is not a branch name a slot can hold")
    link = link_at(payload, "pull_request", "html_url")
    return Decision(
        RELEASE,
        f"{label} ({branch}) was merged",
        branch=branch,
        reason=f"{label} merged ({branch}) {link}".strip(),
        actor=actor,
    )
