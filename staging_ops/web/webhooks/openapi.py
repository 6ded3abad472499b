"""The webhook endpoints' part of the Staging API's OpenAPI document (web/openapi.py)."""

from __future__ import annotations

from staging_ops.jsondoc import JSONObject

_ANSWER = {
    "type": "object",
    "required": ["applied", "message"],
    "properties": {
        "applied": {"type": "boolean", "description": "Whether anything was released."},
        "message": {"type": "string", "description": "What was done, or why nothing was."},
        "slots": {
            "type": "array",
            "description": "The slots the event named, and what became of each.",
            "items": {
                "type": "object",
                "properties": {
                    "slot": {"type": "integer"},
                    "task": {"type": "string"},
                    "branch": {"type": ["string", "null"]},
                    "released": {
                        "type": "boolean",
                        "description": "Whether this slot's claim was freed.",
                    },
                    "outcome": {"type": "string"},
                },
            },
        },
    },
}


def _answer(description: str) -> JSONObject:
    return {"description": description, "content": {"application/json": {"schema": _ANSWER}}}


def _webhook(summary: str, description: str, headers: list[tuple[str, str]]) -> JSONObject:
    return {
        "post": {
            "summary": summary,
            "description": description,
            "security": [],  # the signature is the credential, not a JWT
            "parameters": [
                {
                    "name": name,
                    "in": "header",
                    "required": name.endswith("Signature") or name.endswith("Signature-256"),
                    "schema": {"type": "string"},
                    "description": text,
                }
                for name, text in headers
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": {
                "200": _answer("Released, a ping answered, or a delivery applied before."),
                "202": _answer("Verified, but nothing to do (the body says why)."),
                "400": _answer("The signed body is not a JSON object."),
                "401": _answer("Missing or wrong signature (Linear: or a stale timestamp)."),
                "404": _answer("No secret configured for this webhook on this server."),
                "413": _answer("The body is over 1 MiB."),
                "415": _answer("The signed body was not sent as application/json."),
                "503": _answer(
                    "Not applied and not recorded (the sender retries; `Retry-After`): the "
                    "registry is unavailable, or with `auto_release_stop` the slot's deploy "
                    "lock is held, its droplet unreachable or stopping it failed."
                ),
            },
        }
    }


def webhook_paths() -> JSONObject:
    """`paths` entries of POST /api/staging/webhooks/github and /linear."""
    return {
        "/api/staging/webhooks/github": _webhook(
            "GitHub webhook: a merged PR or a deleted branch frees its slot.",
            "Events `pull_request` (action closed, merged) and `delete` (a branch) of the "
            "inventory's `github_repository` free the slot whose claim deployed that branch (or "
            "whose task is the Linear key in its name); `ping` is answered. Signed with "
            "STAGING_GITHUB_WEBHOOK_SECRET; each `X-GitHub-Delivery` is applied once.",
            [
                ("X-Hub-Signature-256", "`sha256=` + hex HMAC-SHA256 of the raw body"),
                ("X-GitHub-Event", "pull_request, delete or ping"),
                ("X-GitHub-Delivery", "the delivery's GUID (a redelivery repeats it)"),
            ],
        ),
        "/api/staging/webhooks/linear": _webhook(
            "Linear webhook: an issue completed or canceled frees its task's slot.",
            "`type: Issue` (create, update with a state change, remove) in a `completed` or "
            "`canceled` state frees the slot held by `data.identifier`. Signed with "
            "STAGING_LINEAR_WEBHOOK_SECRET; `webhookTimestamp` must be within 60 s of now, and "
            "a body is applied once.",
            [
                ("Linear-Signature", "hex HMAC-SHA256 of the raw body"),
                ("Linear-Delivery", "the delivery's UUID"),
            ],
        ),
    }
