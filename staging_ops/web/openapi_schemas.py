"""The Staging API's resources as JSON Schema, the `components.schemas` of its OpenAPI document
(openapi.py): the Slot, Event and Error it answers with, and the request bodies it takes.

What the server enforces, stated as JSON Schema (ECMA regexes: `$` is the very end), from the
same constants the server's parsers use.
"""

from __future__ import annotations

from staging_ops import parsing
from staging_ops.jsondoc import JSONObject
from staging_ops.slots.model import BRANCH_PATTERN, MAX_TEXT, MAX_TTL, MIN_TTL

_TIME = {"type": ["string", "null"], "format": "date-time"}
_TEXT = {"type": ["string", "null"]}
_SLOT_NUMBER = {"type": "integer", "minimum": 1, "maximum": parsing.MAX_SLOT_ID}
_TASK = "[A-Za-z][A-Za-z0-9]*-[0-9]+"
_COMMIT = "[0-9a-fA-F]{7,64}"


def _free_text(what: str, description: str = "") -> JSONObject:
    """owner, note, by, reason: null or "" for none (or the default); no control characters."""
    schema: JSONObject = {
        "type": ["string", "null"],
        "maxLength": MAX_TEXT.get(what, 1000),
        "pattern": "^[^\\x00-\\x1f\\x7f]*$",
    }
    return {**schema, "description": description} if description else schema


def _optional_text(pattern: str, description: str) -> JSONObject:
    """null or "" for none, else `pattern`."""
    return {"type": ["string", "null"], "pattern": f"^(?:{pattern})?$", "description": description}


def _ttl_text() -> str:
    """A ttl as text: empty (the default), or a duration from MIN_TTL to MAX_TTL."""
    return "^$|" + parsing.duration_pattern(MIN_TTL, MAX_TTL)


def component_schemas() -> JSONObject:
    """Every schema the document's operations name with `#/components/schemas/...`."""
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                # What kind of error, for a client to tell them apart (errors.StagingError.code).
                "code": {
                    "type": "string",
                    "enum": [
                        "bad_input",
                        "unknown_slot",
                        "unknown_branch",
                        "conflict",
                        "holds_another_slot",
                    ],
                },
            },
        },
        "Slot": {
            "type": "object",
            "properties": {
                "slot_id": {"type": "integer"},
                "identifier": {"type": "string"},
                "subdomain": {"type": "string"},
                "role": {"type": "string", "enum": ["qa", "staging"]},
                "status": {"type": "string", "enum": ["free", "claimed"]},
                "task": _TEXT,
                "owner": _TEXT,
                "branch": _TEXT,
                "commit": _TEXT,
                "note": _TEXT,
                "claimed_at": _TIME,
                "expires_at": _TIME,
                "deployed_at": _TIME,
                "updated_at": _TIME,
                "ttl_seconds": {"type": ["integer", "null"]},
            },
        },
        "ClaimRequest": {
            "type": "object",
            "required": ["slot_id", "task"],
            "additionalProperties": False,
            "properties": {
                "action": {"const": "claim"},
                "slot_id": {"oneOf": [_SLOT_NUMBER, {"const": "auto"}]},
                "task": {"type": "string", "pattern": f"^{_TASK}$"},
                "owner": _free_text("owner", "default: the token subject"),
                "ttl": {
                    "oneOf": [
                        {
                            "type": "integer",
                            "minimum": int(MIN_TTL.total_seconds()),
                            "maximum": int(MAX_TTL.total_seconds()),
                        },
                        {"type": "string", "pattern": _ttl_text()},
                        {"type": "null"},
                    ],
                    "description": 'seconds, or "30m", "12h", "7d" (1m to 365d); null or empty: 7d',
                },
                "note": _free_text("note"),
                "auto_deploy": {
                    "type": "boolean",
                    "description": "a GitHub push to the slot's branch deploys it (default true)",
                },
            },
        },
        "DeployRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["action", "slot_id", "branch", "commit"],
            "properties": {
                "action": {"const": "deploy"},
                "slot_id": _SLOT_NUMBER,
                "branch": {"type": "string", "pattern": BRANCH_PATTERN},
                "commit": {"type": "string", "pattern": f"^{_COMMIT}$"},
                "by": _free_text("by", "default: the token subject"),
                "task": _optional_text(_TASK, "if given, must be the holding task"),
                "serving": {
                    "type": "boolean",
                    "description": "note only what serves, whatever the claim (free or"
                    " another task's): claim and expiry are left as they are",
                },
            },
        },
        "FailedDeployRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["branch"],
            "properties": {
                "branch": {"type": "string", "pattern": BRANCH_PATTERN},
                "commit": _optional_text(_COMMIT, "empty if it was never resolved"),
                "by": _free_text("by", "default: the token subject"),
                "step": _free_text("step", "the step that failed (default: deploy)"),
                "serving": _free_text("serving", "the release `current` names now"),
            },
        },
        "ReleaseRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "by": _free_text("by", "default: the token subject"),
                "task": _optional_text(
                    _TASK,
                    "the holding task: naming it allows the release, and it is a"
                    " condition, even with force (409 if another task holds the slot)",
                ),
                "force": {
                    "type": "boolean",
                    "description": "release whoever holds the slot (any owner); a task"
                    " given must still be the holder's",
                },
                "expired_only": {"type": "boolean"},
                "action": {"enum": ["release", "reap"]},
                "reason": _free_text("reason"),
                "expect_commit": _optional_text(
                    _COMMIT, "release only while this commit is the deployed one"
                ),
            },
        },
        "Event": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "slot_id": {"type": "integer"},
                "action": {"type": "string"},
                "actor": {"type": "string"},
                "via": {"type": "string"},
                "at": {"type": "string", "format": "date-time"},
                "detail": _TEXT,
                "before": {"type": ["object", "null"]},
                "after": {"type": ["object", "null"]},
            },
        },
    }
