"""The Staging Dashboard: a page at /staging to see and manage every slot in a browser.

The page itself is static (HTML, CSS, JS from this app only) and holds no data: its script
reads `GET /staging/board.json` (slots with links and live health, recent events) and acts
through the Staging API (`PUT /api/staging/slots`, `POST /api/staging/slots/N/release`), both
with the operator's admin JWT as a Bearer header. See security.py for why that is CSRF-safe.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import (
    Blueprint,
    Flask,
    Response,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from staging_ops.errors import StagingError
from staging_ops.inventory import Inventory
from staging_ops.slots.model import SlotRegistry
from staging_ops.web import auth
from staging_ops.web.api import PREFIX as API_PREFIX
from staging_ops.web.api import auth_error_response, staging_error_response
from staging_ops.web.app_inventory import inventory_or_none
from staging_ops.web.dashboard.board import build_board
from staging_ops.web.dashboard.health_cache import HealthCache
from staging_ops.web.dashboard.security import add_page_headers, refuse_cross_origin_writes

URL_PREFIX = "/staging"

__all__ = ["dashboard_blueprint", "inventory_or_none", "register_dashboard"]


def dashboard_blueprint(
    registry: SlotRegistry, jwt_secret: str, inventory: Inventory | None
) -> Blueprint:
    """The page, its assets, and the one read endpoint the page polls."""
    bp = Blueprint(
        "staging_dashboard",
        __name__,
        url_prefix=URL_PREFIX,
        template_folder="../templates",
        static_folder="../static",
        static_url_path="/static",
    )
    health = HealthCache(inventory) if inventory else None
    bp.after_request(add_page_headers)
    bp.register_error_handler(StagingError, staging_error_response)

    @bp.get("")
    def page() -> str:
        return render_template("dashboard.html", api_prefix=API_PREFIX)

    @bp.get("/")
    def page_with_slash() -> Response:
        return redirect(url_for(".page"))

    @bp.get("/board.json")
    def board() -> Response | tuple[Response, int]:
        # The same admin check as the API's: slot data is never shown without a token.
        try:
            claims = auth.verify(request.headers.get("Authorization"), jwt_secret)
        except auth.AuthError as exc:
            return auth_error_response(exc)
        checks, checked_at = health.snapshot() if health else ({}, None)
        data = build_board(registry, inventory, checks, checked_at, datetime.now(UTC))
        data["subject"] = auth.subject(claims)
        # int(): PyJWT also accepts a numeric string or a float `exp`.
        exp = datetime.fromtimestamp(int(claims["exp"]), UTC)
        data["token_expires_at"] = exp.isoformat()
        return jsonify(data)

    return bp


def register_dashboard(
    app: Flask, registry: SlotRegistry, jwt_secret: str, inventory: Inventory | None = None
) -> None:
    """Mount the dashboard on `app` (with the inventory from the environment unless given),
    and refuse cross-origin writes app-wide."""
    if inventory is None:
        inventory = inventory_or_none()
    app.register_blueprint(dashboard_blueprint(registry, jwt_secret, inventory))
    refuse_cross_origin_writes(app)
