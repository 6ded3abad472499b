"""Linear: the task (the claim's issue, `JA-123`) gets a link attachment with the slot's URL
(attachmentLinkURL: one per URL and issue, so sending it again updates its title), updated
when a deploy ends and when the slot is released, and a comment when a deploy fails or the
slot is freed. The GraphQL documents and variables are pure; the tests' stand-in validates
them against Linear's published schema."""

from __future__ import annotations

import requests

from staging_ops.integrations.config import Service
from staging_ops.integrations.events import FAILED, RELEASED, SUCCEEDED, Event
from staging_ops.integrations.http import DeliveryError, post_json
from staging_ops.jsondoc import JSONObject

ATTACH = (
    "mutation StagingSlotLink($issueId: String!, $url: String!, $title: String) {"
    " attachmentLinkURL(issueId: $issueId, url: $url, title: $title) {"
    " success attachment { id url title } } }"
)
COMMENT = (
    "mutation StagingSlotComment($input: CommentCreateInput!) {"
    " commentCreate(input: $input) { success comment { id } } }"
)
# Linear says "rate limited" with this code in an error's extensions.
RETRYABLE_CODES = frozenset({"RATELIMITED", "INTERNAL_SERVER_ERROR"})


def attachment_title(event: Event) -> str:
    if event.kind == RELEASED:
        return f"{event.environment}: released"
    if event.kind == FAILED:
        return f"{event.environment}: deploy of {event.what} failed"
    return f"{event.environment}: {event.what}" + (" (rolled back)" if event.rollback else "")


def comment_text(event: Event) -> str:
    if event.kind == FAILED:
        action = "Rollback to" if event.rollback else "Deploy of"
        where = f" at `{event.step}`" if event.step else ""
        serving = f" {event.environment} serves {event.serving}." if event.serving else ""
        log = f" [Log]({event.log_url})" if event.log_url else ""
        return f"{action} `{event.what}` to {event.url} failed{where}.{serving}{log}"
    who = f" by {event.by}" if event.by else ""
    return f"{event.environment} ({event.url}) was released{who}: it no longer runs this task."


def requests_for(event: Event) -> list[tuple[str, JSONObject]]:
    """(document, variables) to send for `event`, in order; none without a task."""
    if not event.task:
        return []
    attach = (ATTACH, {"issueId": event.task, "url": event.url, "title": attachment_title(event)})
    comment = (COMMENT, {"input": {"issueId": event.task, "body": comment_text(event)}})
    if event.kind == SUCCEEDED:
        return [attach]
    if event.kind == FAILED:
        return [comment]
    if event.kind == RELEASED:
        return [attach, comment]
    return []


class Linear:
    def __init__(self, service: Service, session: requests.Session | None = None) -> None:
        self.service = service
        self.session = session or requests.Session()
        # A personal API key is sent as it is (an OAuth token would be "Bearer ...").
        self.headers = {"Authorization": service.token, "User-Agent": "staging-ops"}

    def send(self, document: str, variables: JSONObject) -> JSONObject:
        _, data = post_json(
            self.session,
            self.service.url,
            {"query": document, "variables": variables},
            self.headers,
            "Linear",
        )
        if not isinstance(data, dict):
            raise DeliveryError("Linear: no JSON object in the answer", retryable=True)
        errors = data.get("errors") or []
        if errors:
            codes = {str((e.get("extensions") or {}).get("code", "")) for e in errors}
            message = str(errors[0].get("message", "error"))[:200]
            raise DeliveryError(f"Linear: {message}", retryable=bool(codes & RETRYABLE_CODES))
        return data.get("data") or {}


def deliver(event: Event, client: Linear) -> str:
    sent = requests_for(event)
    if not sent and not event.task:
        return "no task: nothing to tell"
    for document, variables in sent:
        client.send(document, variables)
    return f"{len(sent)} request(s)"
