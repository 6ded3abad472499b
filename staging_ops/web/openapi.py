"""The Staging API's OpenAPI 3.1 document, served at /api/staging/openapi.json.

Hand-written so it reads as documentation; tests check that every route it lists exists.
"""

from __future__ import annotations

from staging_ops import parsing
from staging_ops.jsondoc import JSONObject
from staging_ops.web.openapi_deploys import deploy_paths, deploy_schemas
from staging_ops.web.openapi_schemas import component_schemas
from staging_ops.web.webhooks.openapi import webhook_paths


def _digits(low: int, high: int) -> JSONObject:
    """A number in a URL (path or query): ASCII digits, no sign, leading zero, '.' or
    exponent, from `low` to `high` (a JSON Schema integer would allow "1.0")."""
    pattern = "|".join(parsing.decimal_pieces(low, high))
    return {"type": "string", "pattern": f"^(?:{pattern})$"}


_SLOT_IN_URL = _digits(1, parsing.MAX_SLOT_ID)


def _error(description: str) -> JSONObject:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(description: str, schema: JSONObject) -> JSONObject:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_TOO_LARGE = _error(f"The body is over {parsing.MAX_JSON_BODY} bytes.")
_NOT_JSON = _error(
    "A body sent without `Content-Type: application/json` (parameters such as charset are"
    " fine): nothing is written."
)
_UNKNOWN_PARAMETER = _error("A query parameter this operation does not take.")
_AUTH_ERRORS = {
    "401": _error("Missing, malformed, badly signed or expired token (or no `exp` claim)."),
    "403": _error("Valid token without the admin claim."),
    "503": _error("The registry database is unavailable."),
}
_SLOT_ID = {
    "name": "slot_id",
    "in": "path",
    "required": True,
    "schema": _SLOT_IN_URL,
}


def _link(operation: str, pointer: str) -> JSONObject:
    """An OpenAPI link: the answer's slot id (at `pointer`) is `operation`'s slot_id."""
    return {"operationId": operation, "parameters": {"slot_id": f"$response.body#/{pointer}"}}


_CLAIMED = {
    "type": "object",
    "required": ["slot"],
    "properties": {
        "slot": {"$ref": "#/components/schemas/Slot"},
        "renewed": {"type": "boolean", "description": "claims only"},
        "auto_deploy": {"type": "boolean", "description": "claims only: push to deploy"},
    },
}


def openapi_document() -> JSONObject:
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
                    "operationId": "openapi",
                    "summary": "This document (no token needed).",
                    "security": [],
                    "responses": {
                        "200": {"description": "OpenAPI document"},
                        "400": _UNKNOWN_PARAMETER,
                    },
                }
            },
            "/api/staging/slots": {
                "get": {
                    "operationId": "listSlots",
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
                        "400": _UNKNOWN_PARAMETER,
                        **_AUTH_ERRORS,
                    },
                },
                "put": {
                    "operationId": "putSlot",
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
                        "200": {
                            **_ok("Claimed (or renewed) / deploy recorded.", _CLAIMED),
                            "links": {
                                "GetClaimedSlot": _link("getSlot", "slot/slot_id"),
                                "ReleaseClaimedSlot": {
                                    **_link("releaseSlot", "slot/slot_id"),
                                    "requestBody": {"task": "$response.body#/slot/task"},
                                },
                            },
                        },
                        "400": _error("Malformed JSON (or nested too deep) or fields."),
                        "404": _error("Unknown slot."),
                        "409": _error(
                            "Held by another task (names holder, task and since "
                            "when), task holds another slot, no free QA slot, or (deploy) "
                            "the slot is free."
                        ),
                        "413": _TOO_LARGE,
                        "415": _NOT_JSON,
                        **_AUTH_ERRORS,
                    },
                },
            },
            "/api/staging/slots/{slot_id}": {
                "get": {
                    "operationId": "getSlot",
                    "summary": "One slot.",
                    "parameters": [_SLOT_ID],
                    "responses": {
                        "200": _ok(
                            "The slot.",
                            {"type": "object", "required": ["slot"], "properties": {"slot": ref}},
                        ),
                        "400": _error(
                            "The slot id is not a number from 1 to 9999, or a query parameter."
                        ),
                        "404": _error("Unknown slot (or not a slot id)."),
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/api/staging/slots/{slot_id}/release": {
                "post": {
                    "operationId": "releaseSlot",
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
                        "200": {
                            **_ok(
                                "Released, or already free (`released` false).",
                                {
                                    "type": "object",
                                    "required": ["before", "after", "released"],
                                    "properties": {
                                        "before": ref,
                                        "after": ref,
                                        "released": {"type": "boolean"},
                                    },
                                },
                            ),
                            "links": {"GetReleasedSlot": _link("getSlot", "after/slot_id")},
                        },
                        "400": _error("Malformed JSON (or nested too deep) or fields."),
                        "404": _error("Unknown slot (or not a slot id)."),
                        "409": _error(
                            "Held by someone else (use force), held by another task than the"
                            " one given (even with force), or changed meanwhile."
                        ),
                        "413": _TOO_LARGE,
                        "415": _NOT_JSON,
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/api/staging/slots/{slot_id}/deploy-failures": {
                "post": {
                    "operationId": "recordFailedDeploy",
                    "summary": "Add a failed deploy or rollback to the slot's history.",
                    "description": "Written by `invoke deploy` through the API backend: who,"
                    " branch and commit, the step that failed and what serves now. The slot's"
                    " row is unchanged.",
                    "parameters": [_SLOT_ID],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/FailedDeployRequest"}
                            }
                        },
                    },
                    "responses": {
                        "201": _ok(
                            "Recorded.",
                            {
                                "type": "object",
                                "required": ["recorded"],
                                "properties": {"recorded": {"const": True}},
                            },
                        ),
                        "400": _error("Malformed JSON (or nested too deep) or fields."),
                        "404": _error("Unknown slot (or not a slot id)."),
                        "413": _TOO_LARGE,
                        "415": _NOT_JSON,
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/api/staging/history": {
                "get": {
                    "operationId": "history",
                    "summary": "Newest events first (append-only history).",
                    "parameters": [
                        {"name": "slot_id", "in": "query", "schema": _SLOT_IN_URL},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {**_digits(1, parsing.MAX_HISTORY), "default": "50"},
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
                        "400": _error("Bad or unknown query parameters."),
                        **_AUTH_ERRORS,
                    },
                }
            },
            **deploy_paths(
                _error,
                _ok,
                _SLOT_ID,
                {"413": _TOO_LARGE, "415": _NOT_JSON, **_AUTH_ERRORS},
            ),
            **webhook_paths(),
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {**component_schemas(), **deploy_schemas()},
        },
    }
