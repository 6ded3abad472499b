"""One JSON POST to GitHub or Linear with short timeouts; any failure is a DeliveryError
that says whether trying again can help. The credential is a header, never in a message."""

from __future__ import annotations

from typing import Any

import requests

from staging_ops.jsondoc import JSONObject

# Connect and read timeouts: a deliverer must give up quickly (the CLI waits for it at exit).
TIMEOUT = (2.0, 3.0)
# Worth another try: the service throttled us, had a moment, or was not reached.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class DeliveryError(Exception):
    """A request the service did not take: `retryable` when a later try may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def post_json(
    session: requests.Session,
    url: str,
    body: JSONObject,
    headers: dict[str, str],
    what: str,
) -> tuple[int, Any]:
    """POST `body`; (status, decoded JSON) for a 2xx, else DeliveryError naming `what`."""
    try:
        response = session.post(url, json=body, headers=headers, timeout=TIMEOUT)
    except requests.Timeout:
        raise DeliveryError(f"{what}: no answer in {TIMEOUT[1]:g}s", retryable=True) from None
    except requests.RequestException as exc:
        raise DeliveryError(f"{what}: not reached ({type(exc).__name__})", retryable=True) from None
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 300:
        message = data.get("message") if isinstance(data, dict) else None
        retryable = response.status_code in RETRYABLE_STATUS or (
            response.status_code == 403 and response.headers.get("x-ratelimit-remaining") == "0"
        )
        raise DeliveryError(
            f"{what}: HTTP {response.status_code}" + (f" {str(message)[:200]}" if message else ""),
            retryable=retryable,
        )
    return response.status_code, data
