"""The one media type the API's and the webhooks' bodies may have: application/json.

A body sent as text/plain, form data or with no Content-Type is refused (415) before it is
parsed, however JSON it looks: a client that does not say what it sends has not said it means
JSON, and a browser can send text/plain across origins without asking (a "simple" request).
Parameters are fine (`application/json; charset=utf-8`); `application/json-patch` and
`application/jsonx` are other types. Only a request that has a body is judged: a route whose
body is optional, sent without one, needs no Content-Type.
"""

from __future__ import annotations

from flask import request

JSON = "application/json"


def json_type_problem() -> str | None:
    """Why the request's body may not be read as JSON (its Content-Type), or None."""
    given = request.headers.get("Content-Type")
    if not given:
        return f"the body has no Content-Type: send it as {JSON}"
    # werkzeug's mimetype: the type without its parameters, lowercased.
    if request.mimetype != JSON:
        return f"the body's Content-Type must be {JSON}, not {given.split(';', 1)[0].strip()!r}"
    return None
