"""The webhook endpoints: POST /api/staging/webhooks/github and /api/staging/webhooks/linear.

Each request goes through the same gate before anything of its body is used:
1. no signature header: 401 (whether or not a secret is configured: an unsigned request is
   refused for what it lacks, as the OpenAPI document says);
2. no secret configured (STAGING_GITHUB_WEBHOOK_SECRET / STAGING_LINEAR_WEBHOOK_SECRET): 404;
3. a body over 1 MiB: 413, judged by Content-Length before reading, and by reading at most
   one byte more than the limit when the length is not given;
4. a wrong signature: 401 (and for Linear a stale `webhookTimestamp`);
5. a body not sent as application/json: 415 (web/media.py);
6. a body that is not a JSON object: 400.
Then github.py / linear.py decide; a release is applied once per delivery (registry/
deliveries.py) through claims/auto_release.py. What frees nothing is answered 202 with the
reason; a ping, a release and a delivery seen before, 200. A delivery whose release could not
be done now (with auto_release_stop: the slot's deploy lock is held, its droplet unreachable,
stopping failed) is answered 503 with Retry-After and not recorded, so that its redelivery is
applied rather than answered "applied before". Secrets are never logged, and nothing a sender
sends is answered with a 5xx (a failing registry is answered 503, so the sender retries).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from staging_ops.claims.auto_release import AutoReleaseOutcome, Trigger, auto_release
from staging_ops.errors import StagingError
from staging_ops.inventory import Inventory
from staging_ops.jsondoc import JSONObject
from staging_ops.registry import deliveries
from staging_ops.slots.model import SlotRegistry
from staging_ops.web.app_inventory import inventory_or_none
from staging_ops.web.media import json_type_problem
from staging_ops.web.server_deploys import ServerDeploys
from staging_ops.web.webhooks import github, linear
from staging_ops.web.webhooks.decision import DEPLOY, IGNORE, PING, Decision, body_digest

PREFIX = "/api/staging/webhooks"
MAX_BODY = 1024 * 1024
GITHUB_SECRET_ENV = "STAGING_GITHUB_WEBHOOK_SECRET"  # noqa: S105 - the variable's name
LINEAR_SECRET_ENV = "STAGING_LINEAR_WEBHOOK_SECRET"  # noqa: S105 - the variable's name
# Seconds a sender is asked to wait before sending a delivery that was not done again: about
# what a deploy's remaining steps take.
RETRY_AFTER = 60
log = logging.getLogger(__name__)


def answer(status: int, applied: bool, message: str, **extra: Any) -> tuple[Response, int]:
    """Every webhook answer: `applied` says whether anything was done, `message` what."""
    return jsonify({"applied": applied, "message": message, **extra}), status


class _NotDone(Exception):
    """A delivery whose release could not be done now (auto_release's NotDone): raised inside
    `deliveries.applying` so that its keys are not kept."""

    def __init__(self, outcome: AutoReleaseOutcome) -> None:
        super().__init__(outcome.summary())
        self.outcome = outcome


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _read_body() -> bytes:
    """The raw body, at most MAX_BODY bytes (413 beyond, before reading it all)."""
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise _Refused(413, f"the body is over {MAX_BODY} bytes")
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise _Refused(413, f"the body is over {MAX_BODY} bytes")
    return body


def _verified_body(
    header: str, verify: Callable[[str, bytes, str | None], bool], secret: str
) -> bytes:
    """The body, once its signature in `header` is checked: 401 without one (the body is not
    even read) or when it does not match."""
    signature = request.headers.get(header)
    if not signature:
        raise _Refused(401, f"no {header} header")
    body = _read_body()
    if not verify(secret, body, signature):
        raise _Refused(401, "the signature does not match the body")
    return body


def _json_object(body: bytes) -> JSONObject:
    """The verified body as a JSON object: 415 unless it was sent as application/json (a
    GitHub webhook set to form data, say: its settings say how), 400 unless it is one."""
    problem = json_type_problem()
    if problem:
        raise _Refused(415, problem)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise _Refused(400, "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise _Refused(400, "the body is not a JSON object")
    return payload


def webhooks_blueprint(
    dsn: str,
    registry: SlotRegistry,
    inventory: Inventory | None,
    *,
    github_secret: str | None,
    linear_secret: str | None,
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    deploys: ServerDeploys | None = None,
) -> Blueprint:
    """The two endpoints on `registry` (deliveries remembered in the database at `dsn`)."""
    bp = Blueprint("staging_webhooks", __name__, url_prefix=PREFIX)
    repository = inventory.app.github_repository if inventory else None

    def apply(source: str, decision: Decision, keys: list[str]) -> tuple[Response, int]:
        if decision.action == PING:
            return answer(200, False, decision.message)
        if decision.action == IGNORE:
            return answer(202, False, f"nothing done: {decision.message}")
        if decision.action == DEPLOY:
            return push_to_deploy(source, decision, keys)
        trigger = Trigger(source, decision.reason, decision.branch, decision.task, decision.actor)
        try:
            with deliveries.applying(dsn, source, keys) as delivery:
                if not delivery.fresh:
                    return answer(200, False, "nothing done: this delivery was applied before")
                outcome = auto_release(registry, inventory, trigger)
                if outcome.not_done:
                    raise _NotDone(outcome)  # leaves the block: its keys roll back
                delivery.outcome = outcome.summary()
        except _NotDone as unfinished:
            return _not_done(source, decision, unfinished.outcome)
        if not outcome.released:
            return answer(
                202,
                False,
                f"nothing done: {decision.message}, but {outcome.summary()}",
                slots=outcome.slots_json(),
            )
        log.info("%s webhook: %s: %s", source, decision.message, outcome.summary())
        return answer(
            200, True, f"{decision.message}: {outcome.summary()}", slots=outcome.slots_json()
        )

    def push_to_deploy(source: str, decision: Decision, keys: list[str]) -> tuple[Response, int]:
        """A push: deploys queued for the slots holding its branch (server_deploys.py), once
        per delivery; the delivery's record says what was queued, or why nothing was."""
        if deploys is None:
            return answer(
                202, False, f"nothing done: {decision.message}, but server deploys are off"
            )
        with deliveries.applying(dsn, source, keys) as delivery:
            if not delivery.fresh:
                return answer(200, False, "nothing done: this delivery was applied before")
            outcome = deploys.push(registry, decision.branch or "", decision.commit, decision.actor)
            delivery.outcome = outcome.summary()
        queued = [
            {"id": r.id, "slot": r.slot_id, "url": f"/api/staging/deploys/{r.id}"}
            for r in outcome.queued
        ]
        if not queued:
            return answer(202, False, f"nothing done: {decision.message}, but {outcome.summary()}")
        log.info("%s webhook: %s: %s", source, decision.message, outcome.summary())
        return answer(200, True, f"{decision.message}: {outcome.summary()}", deploys=queued)

    def _not_done(
        source: str, decision: Decision, outcome: AutoReleaseOutcome
    ) -> tuple[Response, int]:
        """503 with Retry-After, the delivery not recorded: its redelivery (GitHub: Recent
        Deliveries → Redeliver; Linear retries by itself) does what this one could not."""
        log.warning("%s webhook not done, to be redelivered: %s", source, outcome.summary())
        response, status = answer(
            503,
            bool(outcome.released),
            f"not done: {decision.message}, but {outcome.summary()}; not recorded as applied:"
            " redeliver it once that is over",
            slots=outcome.slots_json(),
        )
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response, status

    def gate(secret: str | None, header: str, handle: Callable[[], tuple[Response, int]]) -> Any:
        if not request.headers.get(header):
            return answer(401, False, f"no {header} header")
        if not secret:
            return answer(404, False, "this webhook is not configured on this server")
        try:
            return handle()
        except _Refused as refused:
            return answer(refused.status, False, refused.message)
        except StagingError as exc:
            log.error("webhook not applied: %s", exc)  # the sender retries on a 5xx
            return answer(503, False, "registry unavailable: not applied")

    @bp.post("/github")
    def from_github() -> Any:
        def handle() -> tuple[Response, int]:
            body = _verified_body(github.SIGNATURE_HEADER, github.verify, github_secret or "")
            payload = _json_object(body)
            decision = github.decide(request.headers.get(github.EVENT_HEADER), payload, repository)
            delivery = request.headers.get(github.DELIVERY_HEADER, "")
            keys = [key for key in (delivery.strip(), body_digest(body)) if key]
            return apply("github", decision, keys)

        return gate(github_secret, github.SIGNATURE_HEADER, handle)

    @bp.post("/linear")
    def from_linear() -> Any:
        def handle() -> tuple[Response, int]:
            body = _verified_body(linear.SIGNATURE_HEADER, linear.verify, linear_secret or "")
            payload = _json_object(body)
            stale = linear.timestamp_problem(payload, now_ms())
            if stale:
                raise _Refused(401, stale)
            delivery = request.headers.get(linear.DELIVERY_HEADER, "")
            keys = [key for key in (delivery.strip(), body_digest(body)) if key]
            return apply("linear", linear.decide(payload), keys)

        return gate(linear_secret, linear.SIGNATURE_HEADER, handle)

    return bp


def register_webhooks(
    app: Any,
    registry: SlotRegistry,
    inventory: Inventory | None,
    deploys: ServerDeploys | None = None,
) -> None:
    """Mount the endpoints when the registry is a database (deliveries are remembered there),
    with the secrets and (unless given) the inventory from the environment."""
    dsn = getattr(registry, "dsn", None)
    if not dsn:
        return  # an in-memory or API registry: no place to remember deliveries
    if inventory is None:
        inventory = inventory_or_none()
    app.register_blueprint(
        webhooks_blueprint(
            dsn,
            registry,
            inventory,
            github_secret=os.environ.get(GITHUB_SECRET_ENV) or None,
            linear_secret=os.environ.get(LINEAR_SECRET_ENV) or None,
            deploys=deploys,
        )
    )
