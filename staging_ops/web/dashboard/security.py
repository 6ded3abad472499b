"""Browser-facing protections of the app that serves the dashboard.

CSRF: the Staging API authenticates by the `Authorization: Bearer` header only, never by a
cookie, so a page on another site cannot make a browser send an authenticated request for it
(browsers attach no Authorization header of their own, and a cross-origin fetch that sets one
needs a CORS preflight, which this app never grants). As a second line, writes a browser marks
as coming from another origin are refused outright: the slot apps on sibling subdomains run
branches under test, and they are "same-site" but never "same-origin".

The dashboard's responses carry a strict Content-Security-Policy: scripts, styles and fetches
only from this origin, so a stray injection can neither run inline code nor send the token
anywhere else, and no referrer leaves with the links to Linear or the slots.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, request

from staging_ops.web.api import error_response

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def is_cross_origin() -> bool:
    """True when the browser says the request comes from a page of another origin.

    Non-browser clients (the CLI's api_client, curl) send neither header and pass. Behind a
    reverse proxy, the proxy must pass the original Host header for the Origin comparison.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site in ("cross-site", "same-site"):
        return True
    origin = request.headers.get("Origin")
    return origin is not None and urlsplit(origin).netloc != request.host


def refuse_cross_origin_writes(app: Flask) -> None:
    """Install the second-line CSRF check on every route of `app` (the API's included)."""

    @app.before_request
    def _refuse() -> tuple[Response, int] | None:
        if request.method in UNSAFE_METHODS and is_cross_origin():
            return error_response(403, "cross-origin request refused")
        return None


def add_page_headers(response: Response) -> Response:
    """CSP and friends on a dashboard response; `no-store` keeps admin data out of caches."""
    response.headers.update(PAGE_HEADERS)
    if response.mimetype in ("text/html", "application/json"):
        response.headers["Cache-Control"] = "no-store"
    return response
