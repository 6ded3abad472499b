"""The Staging API blueprint: /api/staging/... on any SlotRegistry, behind an admin JWT.

Mount it in any Flask app (the Campaign UI does) with
`app.register_blueprint(api_blueprint(registry, secret))`. Every answer is JSON; every error is
`{"error": "..."}` with 400 (malformed), 401 (no/invalid/expired token), 403 (not admin),
404 (unknown slot, or branch to deploy), 409 (conflict), 413 (body too large), 415 (a body
that is not application/json, media.py) or 503 (registry unavailable) — never a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, request

from staging_ops import integrations, parsing
from staging_ops.errors import BadInput, Conflict, StagingError
from staging_ops.jsondoc import JSONObject
from staging_ops.registry.deploy_queue import DeployQueue
from staging_ops.slots.model import (
    SlotRegistry,
    UnknownSlot,
    parse_branch,
    parse_commit,
    parse_task,
    parse_text,
    parse_ttl,
)
from staging_ops.web import auth
from staging_ops.web.media import json_type_problem
from staging_ops.web.openapi import openapi_document
from staging_ops.web.server_deploys import ServerDeploys, UnknownBranch

PREFIX = "/api/staging"
log = logging.getLogger(__name__)

CLAIM_FIELDS = {"action", "slot_id", "task", "owner", "ttl", "note", "auto_deploy"}
DEPLOY_FIELDS = {"action", "slot_id", "branch", "commit", "by", "task", "serving"}
FAILED_DEPLOY_FIELDS = {"branch", "commit", "by", "step", "serving"}
RELEASE_FIELDS = {"by", "task", "force", "expired_only", "action", "reason", "expect_commit"}
RELEASE_ACTIONS = ("release", "reap")
MAX_HISTORY = parsing.MAX_HISTORY
# What a queued deploy or rollback names besides its task (its only other field).
QUEUED_TARGET = {"deploy": "branch", "rollback": "release"}
RECENT_DEPLOYS = 10
QUERY_PARAMETERS = {"history": {"slot_id", "limit"}}
MAX_BODY = parsing.MAX_JSON_BODY


def error_response(status: int, message: str, code: str | None = None) -> tuple[Response, int]:
    """`{"error": message}`, and the error's `code` when it is one of ours (StagingError)."""
    return jsonify({"error": message, **({"code": code} if code else {})}), status


def auth_error_response(exc: auth.AuthError) -> tuple[Response, int]:
    """401/403 as JSON; a 401 also names the scheme (RFC 6750)."""
    response, status = error_response(exc.status, exc.message)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="staging"'
    return response, status


def staging_error_response(exc: StagingError) -> tuple[Response, int]:
    """Our exceptions as HTTP answers. Registry failures are logged here and reported
    without detail: the client needs to know it failed, not where the database lives."""
    if isinstance(exc, UnknownSlot | UnknownBranch):
        return error_response(404, str(exc), exc.code)
    if isinstance(exc, BadInput):
        return error_response(400, str(exc), exc.code)
    if isinstance(exc, Conflict):
        return error_response(409, str(exc), exc.code)
    log.error("registry failure: %s", exc)
    return error_response(503, "registry unavailable")


def _raw_body() -> bytes:
    """The body, at most MAX_BODY bytes: 413 beyond, judged before reading it all."""
    length = request.content_length
    body = b"" if length == 0 else request.stream.read(MAX_BODY + 1)
    if (length or 0) > MAX_BODY or len(body) > MAX_BODY:
        abort(413, f"the request body is over {MAX_BODY} bytes")
    return body


def _body(allowed: set[str], optional: bool = False) -> JSONObject:
    """The JSON object body, its fields among `allowed` (none sent: {} where `optional`).
    Judged before anything is written: 413, 415 (media.py), then 400."""
    body = _raw_body()
    if optional and not body:
        return {}
    if body:
        problem = json_type_problem()
        if problem:
            abort(415, problem)
    try:
        data = parsing.json_body(body, "it")
    except BadInput as exc:
        raise BadInput(f"the request body must be a JSON object: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise BadInput(f"unknown field(s): {', '.join(unknown)}")
    return data


def _slot_id(value: Any, allow_auto: bool = False) -> int | None:
    """A body's slot_id: a JSON integer from 1 to MAX_SLOT_ID (or "auto", where allowed)."""
    if allow_auto and value == "auto":
        return None
    if isinstance(value, str) or value is None:
        suffix = ' or "auto"' if allow_auto else ""
        raise BadInput(f"slot_id must be an integer from 1 to {parsing.MAX_SLOT_ID}{suffix}")
    return parsing.integer(value, "slot_id", low=1, high=parsing.MAX_SLOT_ID)


def _path_slot(text: str) -> int:
    """A URL's slot id (ASCII digits; werkzeug's int converter takes any Unicode digit): any
    other text names no slot (404)."""
    try:
        return parsing.integer(text, "slot_id", low=1, high=parsing.MAX_SLOT_ID)
    except BadInput:
        raise UnknownSlot(f"no slot {parsing.shown(text)}: slot ids are 1 to 9999") from None


def _query_slot(text: str) -> int:
    return parsing.integer(text, "slot_id", low=1, high=parsing.MAX_SLOT_ID)


def _flag(data: JSONObject, key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise BadInput(f"{key} must be true or false")
    return value


def _string(data: JSONObject, key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise BadInput(f"{key} must be a string")
    return value


def api_blueprint(
    registry: SlotRegistry,
    jwt_secret: str,
    deploys: ServerDeploys | None = None,
    claim_settings: DeployQueue | None = None,
) -> Blueprint:
    """The Staging API on `registry`, accepting admin tokens signed with `jwt_secret`; with
    `deploys`, the server-side deploys (queued for the deploy workers) as well, and with
    `claim_settings` (the queue's database) a claim's auto_deploy."""
    bp = Blueprint("staging_api", __name__, url_prefix=PREFIX)

    @bp.before_request
    def require_admin() -> tuple[Response, int] | None:
        view = (request.endpoint or "").rsplit(".", 1)[-1]
        if view != "openapi":  # the description of the API is public; the API is not
            try:
                claims = auth.verify(request.headers.get("Authorization"), jwt_secret)
            except auth.AuthError as exc:
                return auth_error_response(exc)
            g.staging_subject = auth.subject(claims)
            g.staging_registry = registry.acting_via(f"api:{g.staging_subject}")
        # A misspelt parameter (`?limt=5`) would otherwise be ignored without a word.
        unknown = sorted(set(request.args) - QUERY_PARAMETERS.get(view, set()))
        if unknown:
            return error_response(400, f"unknown query parameter(s): {', '.join(unknown)}")
        return None

    bp.register_error_handler(StagingError, staging_error_response)

    @bp.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(openapi_document())

    # The newest (slots, JSON body): a caching registry returns the very same tuple until
    # something changes, so the body is encoded once per change, not once per request.
    encoded: list[tuple[object, bytes]] = [(object(), b"")]  # a marker no answer can be

    @bp.get("/slots")
    def list_slots() -> Response:
        states = g.staging_registry.status()
        seen, body = encoded[0]
        if states is not seen:
            slots = {"slots": [s.to_dict() for s in states]}
            body = current_app.json.response(slots).get_data()
            encoded[0] = (states, body)
        return Response(body, mimetype="application/json")

    @bp.get("/slots/<slot_id>")
    def get_slot(slot_id: str) -> Response:
        return jsonify({"slot": g.staging_registry.get(_path_slot(slot_id)).to_dict()})

    @bp.put("/slots")
    def put_slot() -> Response:
        """Claim a slot (action "claim", the default) or record a deploy (action "deploy")."""
        data = _body(CLAIM_FIELDS | DEPLOY_FIELDS)
        action = data.get("action", "claim")
        if action == "deploy":
            return _deploy(data)
        if action != "claim":
            raise BadInput('action must be "claim" or "deploy"')
        extra = sorted(set(data) - CLAIM_FIELDS)
        if extra:
            raise BadInput(f"field(s) not allowed in a claim: {', '.join(extra)}")
        auto_deploy = _flag(data, "auto_deploy") if "auto_deploy" in data else None
        if auto_deploy is not None and claim_settings is None:
            raise BadInput("auto_deploy needs a registry database behind this API")
        result = g.staging_registry.claim(
            _slot_id(data.get("slot_id"), allow_auto=True),
            parse_task(_string(data, "task")),
            parse_text(_string(data, "owner"), "owner") or g.staging_subject,
            parse_ttl(data.get("ttl")),
            parse_text(_string(data, "note"), "note"),
        )
        body = result.to_dict()
        state = result.slot
        if claim_settings is not None and state.claimed_at is not None:
            if auto_deploy is not None:
                claim_settings.set_auto_deploy(state.slot_id, state.claimed_at, auto_deploy)
            body["auto_deploy"] = claim_settings.auto_deploy(state.slot_id, state.claimed_at)
        return jsonify(body)

    def _deploy(data: JSONObject) -> Response:
        extra = sorted(set(data) - DEPLOY_FIELDS)
        if extra:
            raise BadInput(f"field(s) not allowed in a deploy: {', '.join(extra)}")
        task = _string(data, "task")
        state = g.staging_registry.record_deploy(
            _slot_id(data.get("slot_id")),
            parse_branch(_string(data, "branch")),
            parse_commit(_string(data, "commit")),
            parse_text(_string(data, "by"), "by") or g.staging_subject,
            task=parse_task(task) if task else None,
            serving=_flag(data, "serving"),
        )
        return jsonify({"slot": state.to_dict()})

    @bp.post("/slots/<slot_id>/deploy-failures")
    def record_failed_deploy(slot_id: str) -> tuple[Response, int]:
        """A deploy that failed, into the slot's history (the slot itself is unchanged). The
        registry checks the values, as it does for a deploy from the CLI (BadInput: 400)."""
        slot = _path_slot(slot_id)
        data = _body(FAILED_DEPLOY_FIELDS)
        g.staging_registry.record_failed_deploy(
            slot,
            _string(data, "branch") or "",
            _string(data, "commit") or "",
            _string(data, "by") or g.staging_subject,
            _string(data, "step") or "",
            _string(data, "serving") or "",
        )
        return jsonify({"recorded": True}), 201

    @bp.post("/slots/<slot_id>/release")
    def release_slot(slot_id: str) -> Response:
        slot = _path_slot(slot_id)
        data = _body(RELEASE_FIELDS, optional=True)
        action = data.get("action", "release")
        if action not in RELEASE_ACTIONS:
            raise BadInput('action must be "release" or "reap"')
        task = _string(data, "task")
        expect_commit = _string(data, "expect_commit")
        by = parse_text(_string(data, "by"), "by") or g.staging_subject
        result = g.staging_registry.release(
            slot,
            by,
            task=parse_task(task) if task else None,
            force=_flag(data, "force"),
            expired_only=_flag(data, "expired_only"),
            action=action,
            reason=parse_text(_string(data, "reason"), "reason"),
            expect_commit=parse_commit(expect_commit) if expect_commit else None,
        )
        integrations.released(g.staging_registry, None, result, by)
        return jsonify(result.to_dict())

    def _server_deploys() -> ServerDeploys:
        if deploys is None:
            abort(404, "server deploys are off on this server (inventory: [deploys] server)")
        return deploys

    def _queue(action: str, slot_id: str) -> tuple[Response, int]:
        """Queue a deploy or a rollback of the held slot: 202, and where to poll its progress.
        Judged in the order the answers are: the slot (404), the body (413, 415, 400), server
        deploys on (404), then the request itself."""
        slot = _path_slot(slot_id)
        target = QUEUED_TARGET[action]
        data = _body({target, "task"}, optional=True)
        service = _server_deploys()
        enqueue = service.request_deploy if action == "deploy" else service.request_rollback
        queued = enqueue(
            g.staging_registry,
            slot,
            g.staging_subject,
            **{target: _string(data, target)},
            task=_string(data, "task"),
        )
        url = f"{PREFIX}/deploys/{queued.id}"
        response = jsonify({"request": queued.to_dict(), "url": url})
        response.headers["Location"] = url
        return response, 202

    @bp.post("/slots/<slot_id>/deploy")
    def queue_deploy(slot_id: str) -> tuple[Response, int]:
        """Queue a deploy of the held slot (branch: the slot's by default)."""
        return _queue("deploy", slot_id)

    @bp.post("/slots/<slot_id>/rollback")
    def queue_rollback(slot_id: str) -> tuple[Response, int]:
        """Queue a rollback of the held slot (release: the previous verified by default)."""
        return _queue("rollback", slot_id)

    @bp.get("/deploys/<request_id>")
    def get_deploy(request_id: str) -> Response:
        try:
            number = parsing.integer(request_id, "id", low=1, high=2**62)
        except BadInput:
            number = 0
        found = _server_deploys().queue.get(number) if number else None
        if found is None:
            abort(404, f"no deploy request {parsing.shown(request_id)}")
        return jsonify({"request": found.to_dict()})

    @bp.get("/slots/<slot_id>/releases")
    def slot_releases(slot_id: str) -> Response | tuple[Response, int]:
        """The slot's releases on the droplet (verified, bad, live) and its recent
        server-side deploys with their steps and lines."""
        from staging_ops.deploy.listing import slot_releases as read_releases
        from staging_ops.remote import Unreachable

        service = _server_deploys()
        slot = service.slot(_path_slot(slot_id))
        recent = service.queue.recent(slot.id, RECENT_DEPLOYS)
        try:
            views = [v.to_dict() for v in read_releases(service.inventory, slot)]
        except Unreachable as exc:
            log.warning("releases of %s: %s", slot.identifier, exc)
            return error_response(503, f"{slot.identifier}'s droplet is unreachable")
        return jsonify({"releases": views, "deploys": [r.to_dict() for r in recent]})

    @bp.get("/history")
    def history() -> Response:
        slot = request.args.get("slot_id")
        limit = parsing.integer(request.args.get("limit", "50"), "limit", low=1, high=MAX_HISTORY)
        events = g.staging_registry.history(None if slot is None else _query_slot(slot), limit)
        return jsonify({"events": [e.to_dict() for e in events]})

    return bp
