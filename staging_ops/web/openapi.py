"""The Staging API's OpenAPI 3.1 document, served at /api/staging/openapi.json.

Hand-written so it reads as documentation; tests check that every route it lists exists.
"""

from __future__ import annotations

from typing import Any

from staging_ops.web.webhooks.openapi import webhook_paths

_TIME = {"type": ["string", "null"], "format": "date-time"}
_TEXT = {"type": ["string", "null"]}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_AUTH_ERRORS = {
    "401": _error("Missing, malformed, badly signed or expired token (or no `exp` claim)."),
    "403": _error("Valid token without the admin claim."),
    "503": _error("The registry database is unavailable."),
}
_SLOT_ID = {
    "name": "slot_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


def openapi_document() -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Slot"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Staging API",
            "version": "1",
            "description": (
                "Claims on the staging droplet's slots (table marts.staging_slots). "
                "Every endpoint except this document needs `Authorization: Bearer <JWT>`: "
                "HS256, signed with STAGING_API_JWT_SECRET, with an `exp` claim, and an admin "
                'claim: `"admin": true`, `"role": "admin"` or `"admin"` in `"roles"`. '
                'Errors are always `{"error": "..."}`.'
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/staging/openapi.json": {
                "get": {
                    "summary": "This document (no token needed).",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI document"}},
                }
            },
            "/api/staging/slots": {
                "get": {
                    "summary": "Every slot and its claim.",
                    "responses": {
                        "200": _ok(
                            "The slots, by slot id.",
                            {
                                "type": "object",
                                "required": ["slots"],
                                "properties": {"slots": {"type": "array", "items": ref}},
                            },
                        ),
                        **_AUTH_ERRORS,
                    },
                },
                "put": {
                    "summary": "Claim a slot, or record a deploy to a claimed slot.",
                    "description": (
                        'action "claim" (default): slot_id (number or "auto" = lowest free QA '
                        "slot, never slot 10), task (Linear key), owner, ttl (seconds or like "
                        '"7d"), note. The holding task claiming again renews the expiry. '
                        'action "deploy": slot_id, branch, commit, by, optional task '
                        "(must be the holder); renews the expiry."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/ClaimRequest"},
                                        {"$ref": "#/components/schemas/DeployRequest"},
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _ok("Claimed (or renewed) / deploy recorded.", {"type": "object"}),
                        "400": _error("Malformed JSON or fields."),
                        "404": _error("Unknown slot."),
                        "409": _error(
                            "Held by another task (names holder, task and since "
                            "when), task holds another slot, or no free QA slot."
                        ),
                        **_AUTH_ERRORS,
                    },
                },
            },
            "/api/staging/slots/{slot_id}": {
                "get": {
                    "summary": "One slot.",
                    "parameters": [_SLOT_ID],
                    "responses": {
                        "200": _ok("The slot.", {"type": "object", "properties": {"slot": ref}}),
                        "404": _error("Unknown slot."),
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/api/staging/slots/{slot_id}/release": {
                "post": {
                    "summary": "Release a slot (only its owner or task, unless force).",
                    "parameters": [_SLOT_ID],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ReleaseRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _ok(
                            "Released, or already free (`released` false).",
                            {
                                "type": "object",
                                "properties": {
                                    "before": ref,
                                    "after": ref,
                                    "released": {"type": "boolean"},
                                },
                            },
                        ),
                        "400": _error("Malformed JSON or fields."),
                        "404": _error("Unknown slot."),
                        "409": _error(
                            "Held by someone else (use force), held by another task than the"
                            " one given (even with force), or changed meanwhile."
                        ),
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/api/staging/history": {
                "get": {
                    "summary": "Newest events first (append-only history).",
                    "parameters": [
                        {"name": "slot_id", "in": "query", "schema": {"type": "integer"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 1000,
                                "default": 50,
                            },
                        },
                    ],
                    "responses": {
                        "200": _ok(
                            "Events.",
                            {
                                "type": "object",
                                "properties": {
                                    "events": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Event"},
                                    }
                                },
                            },
                        ),
                        "400": _error("Bad query parameters."),
                        **_AUTH_ERRORS,
                    },
                }
            },
            **webhook_paths(),
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
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
                        "slot_id": {"oneOf": [{"type": "integer"}, {"const": "auto"}]},
                        "task": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9]*-[0-9]+$"},
                        "owner": {"type": "string", "description": "default: the token subject"},
                        "ttl": {
                            "oneOf": [{"type": "integer"}, {"type": "string"}],
                            "description": 'seconds, or "30m", "12h", "7d"; default 7d',
                        },
                        "note": _TEXT,
                    },
                },
                "DeployRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["action", "slot_id", "branch", "commit"],
                    "properties": {
                        "action": {"const": "deploy"},
                        "slot_id": {"type": "integer"},
                        "branch": {"type": "string"},
                        "commit": {"type": "string"},
                        "by": {"type": "string"},
                        "task": _TEXT,
                        "serving": {
                            "type": "boolean",
                            "description": "note only what serves, whatever the claim (free or"
                            " another task's): claim and expiry are left as they are",
                        },
                    },
                },
                "ReleaseRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "by": {"type": "string", "description": "default: the token subject"},
                        "task": {
                            **_TEXT,
                            "description": "the holding task: naming it allows the release, and"
                            " it is a condition, even with force (409 if another task holds the"
                            " slot)",
                        },
                        "force": {
                            "type": "boolean",
                            "description": "release whoever holds the slot (any owner); a task"
                            " given must still be the holder's",
                        },
                        "expired_only": {"type": "boolean"},
                        "action": {"enum": ["release", "reap"]},
                        "reason": _TEXT,
                        "expect_commit": {
                            "type": ["string", "null"],
                            "description": "release only while this commit is the deployed one",
                        },
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
            },
        },
    }
