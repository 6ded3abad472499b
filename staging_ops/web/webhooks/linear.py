"""Linear webhooks: the signature, the timestamp, and which deliveries free a slot.

- signature: `Linear-Signature: <hex HMAC-SHA256 of the raw body>`;
- `webhookTimestamp` (milliseconds, inside the signed body) within a minute of now, so a
  captured delivery cannot be replayed later;
- `type: "Issue"` whose `data.state.type` is `completed` or `canceled` frees the slot its
  `data.identifier` (the task key, JA-123) holds. For `action: "update"` only when this update
  changed the state (`updatedFrom.stateId`): editing the title of an issue done long ago must
  not free a slot its task has claimed again since. `create` and `remove` of an issue in such
  a state count too.
"""

from __future__ import annotations

from staging_ops.slots.model import TASK_KEY
from staging_ops.web.webhooks.decision import (
    RELEASE,
    Decision,
    ignore,
    link_at,
    plain_name,
    signature_matches,
    text_at,
    value_at,
)

SIGNATURE_HEADER = "Linear-Signature"
DELIVERY_HEADER = "Linear-Delivery"
MAX_SKEW_MS = 60_000
DONE_STATES = ("completed", "canceled")
ACTIONS = ("create", "update", "remove")


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is the HMAC of `body` with `secret`."""
    return signature_matches(secret, body, header)


def timestamp_problem(payload: object, now_ms: int) -> str | None:
    """Why the signed `webhookTimestamp` is unacceptable (missing, or over a minute away from
    `now_ms`), or None when it is fresh."""
    stamp = value_at(payload, "webhookTimestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        return "the payload has no webhookTimestamp"
    if abs(now_ms - stamp) > MAX_SKEW_MS:
        return "webhookTimestamp is more than a minute away from now (a replay?)"
    return None


def decide(payload: object) -> Decision:
    """What the verified, fresh `payload` asks of the slots."""
    kind, action = text_at(payload, "type"), text_at(payload, "action")
    if kind != "Issue":
        return ignore(f"type {kind or '(none)'!r} is not an issue")
    if action not in ACTIONS:
        return ignore(f"action {action or '(none)'!r} frees nothing")
    task = (text_at(payload, "data", "identifier") or "").upper()
    if not TASK_KEY.fullmatch(task):
        return ignore("the issue has no identifier like JA-123")
    state = text_at(payload, "data", "state", "type")
    if state not in DONE_STATES:
        return ignore(f"{task} is {state or 'in an unknown state'}, not completed or canceled")
    if action == "update" and not _state_changed(payload):
        return ignore(f"{task} was {state} before this update")
    link = link_at(payload, "data", "url") or link_at(payload, "url")
    name = plain_name(text_at(payload, "data", "state", "name")) or state
    return Decision(
        RELEASE,
        f"{task} is {state}",
        task=task,
        reason=f"{task} moved to {name} in Linear {link}".strip(),
        actor=plain_name(text_at(payload, "actor", "name")),
    )


def _state_changed(payload: object) -> bool:
    previous = value_at(payload, "updatedFrom")
    return isinstance(previous, dict) and "stateId" in previous
