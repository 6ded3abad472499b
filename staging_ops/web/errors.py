"""App-wide error handlers: JSON `{"error": ...}` under /api/, and never a stack trace anywhere.

The blueprint handles its own errors; these cover what happens outside its views: unknown URLs
and wrong methods under /api/staging, and any unexpected exception (logged, answered 500).
Other paths (the dashboard at /staging, say) keep Flask's plain HTML error pages.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from staging_ops.errors import StagingError
from staging_ops.web.api import staging_error_response

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response | tuple[Response, int]:
        if not _wants_json():
            return exc.get_response()
        response = jsonify({"error": exc.description or exc.name})
        response.status_code = exc.code or 500
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(StagingError)
    def staging_error(exc: StagingError) -> tuple[Response, int]:
        return staging_error_response(exc)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response | tuple[Response, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not _wants_json():
            return InternalServerError().get_response()
        return jsonify({"error": "internal error"}), 500
