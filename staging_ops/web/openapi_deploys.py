"""The server-side deploys' part of the Staging API's OpenAPI document (openapi.py): queue a
deploy or rollback of a held slot, poll its progress, read the slot's releases."""

from __future__ import annotations

from collections.abc import Callable

from staging_ops.jsondoc import JSONObject
from staging_ops.slots.deploy_requests import KINDS, STATES, VIAS
from staging_ops.slots.model import BRANCH_PATTERN

_OFF = "Unknown slot, or server deploys are off on this server (`[deploys] server`)."
_TASK = {"type": ["string", "null"], "pattern": "^(?:[A-Za-z][A-Za-z0-9]*-[0-9]+)?$"}
_REQUEST = {"$ref": "#/components/schemas/DeployRequestState"}


def deploy_schemas() -> JSONObject:
    text = {"type": ["string", "null"]}
    return {
        "QueueDeploy": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "branch": {
                    "type": ["string", "null"],
                    "pattern": BRANCH_PATTERN,
                    "description": "default: the branch the slot serves",
                },
                "task": {**_TASK, "description": "must be the holder's task, if given"},
            },
        },
        "QueueRollback": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "release": {
                    "type": ["string", "null"],
                    "pattern": "^[0-9A-Za-z][0-9A-Za-z._-]{0,99}$",
                    "description": "default: the previous verified release",
                },
                "task": {**_TASK, "description": "must be the holder's task, if given"},
            },
        },
        "DeployRequestState": {
            "type": "object",
            "required": ["id", "slot_id", "kind", "state", "steps", "lines"],
            "properties": {
                "id": {"type": "integer"},
                "slot_id": {"type": "integer"},
                "kind": {"enum": list(KINDS)},
                "via": {"enum": list(VIAS)},
                "state": {"enum": list(STATES)},
                "branch": text,
                "commit": text,
                "target": text,
                "task": text,
                "requested_by": {"type": "string"},
                "attempts": {"type": "integer"},
                "step": {**text, "description": "running step N: NAME while it runs"},
                "steps": {"type": "array", "items": {"type": "object"}},
                "lines": {"type": "array", "items": {"type": "string"}},
                "error": {**text, "description": "a failed request's message and log lines"},
                "result": {"type": ["object", "null"]},
            },
        },
    }


def deploy_paths(
    error: Callable[[str], JSONObject],
    ok: Callable[[str, JSONObject], JSONObject],
    slot_param: JSONObject,
    common: JSONObject,
) -> JSONObject:
    """The operations; `common`: the auth, 413 and 415 answers every body-taking one has."""
    queued = {
        "description": "Queued: poll `url` (also in Location) for its progress.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["request", "url"],
                    "properties": {"request": _REQUEST, "url": {"type": "string"}},
                }
            }
        },
    }

    def queue(operation: str, summary: str, schema: str) -> JSONObject:
        return {
            "post": {
                "operationId": operation,
                "summary": summary,
                "parameters": [slot_param],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
                    },
                },
                "responses": {
                    "202": queued,
                    "400": error("Malformed JSON (or nested too deep) or fields."),
                    "404": error(f"{_OFF[:-1]}, or a branch the app repository does not have."),
                    "409": error(
                        "The slot is free, held by another task than the one given, or (deploy)"
                        " has no branch deployed to default to."
                    ),
                    **common,
                },
            }
        }

    return {
        "/api/staging/slots/{slot_id}/deploy": queue(
            "queueDeploy",
            "Queue a deploy of the held slot (run by the deploy workers).",
            "QueueDeploy",
        ),
        "/api/staging/slots/{slot_id}/rollback": queue(
            "queueRollback", "Queue a rollback of the held slot.", "QueueRollback"
        ),
        "/api/staging/deploys/{request_id}": {
            "get": {
                "operationId": "getDeploy",
                "summary": "A queued deploy or rollback: its state, running step, steps, lines.",
                "parameters": [
                    {
                        "name": "request_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"},
                    }
                ],
                "responses": {
                    "200": ok(
                        "The request.",
                        {
                            "type": "object",
                            "required": ["request"],
                            "properties": {"request": _REQUEST},
                        },
                    ),
                    "400": error("A query parameter this operation does not take."),
                    "404": error("No such request, or server deploys are off."),
                    **{k: v for k, v in common.items() if k not in ("413", "415")},
                },
            }
        },
        "/api/staging/slots/{slot_id}/releases": {
            "get": {
                "operationId": "slotReleases",
                "summary": "The slot's releases (verified, bad, live) and its recent deploys.",
                "parameters": [slot_param],
                "responses": {
                    "200": ok(
                        "Releases newest first, and the newest server-side requests.",
                        {
                            "type": "object",
                            "required": ["releases", "deploys"],
                            "properties": {
                                "releases": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "release": {"type": "string"},
                                            "commit": {"type": "string"},
                                            "branch": {"type": "string"},
                                            "state": {"enum": ["verified", "bad", "unverified"]},
                                            "live": {"type": "boolean"},
                                        },
                                    },
                                },
                                "deploys": {"type": "array", "items": _REQUEST},
                            },
                        },
                    ),
                    "400": error("A query parameter this operation does not take."),
                    "404": error(_OFF),
                    **{k: v for k, v in common.items() if k not in ("413", "415")},
                },
            }
        },
    }
