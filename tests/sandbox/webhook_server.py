"""`invoke api.serve` started for the webhook and scheduled-reap tests, with the webhook
secrets (and whatever else a test sets) in its environment: the real server, as operators run
it, on a real registry."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import requests

from tests.sandbox.api_server import SECRET, Server, serving
from tests.webhook_fixtures import linear_headers

GITHUB_SECRET = "github-webhook-secret-for-tests-0123456789"
LINEAR_SECRET = "linear-webhook-secret-for-tests-0123456789"
WEBHOOK_ENV = {
    "STAGING_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
    "STAGING_LINEAR_WEBHOOK_SECRET": LINEAR_SECRET,
}
LINEAR = "/api/staging/webhooks/linear"


@contextlib.contextmanager
def api_server(
    registry_dsn: str, inventory: Path, extra: dict[str, str] | None = None, workers: int = 2
) -> Iterator[Server]:
    """The server on `registry_dsn` (already migrated), the scheduled reap off unless `extra`
    sets STAGING_REAP_INTERVAL."""
    env = {
        "STAGING_REGISTRY_DSN": registry_dsn,
        "STAGING_API_JWT_SECRET": SECRET,
        "STAGING_INVENTORY": str(inventory),
        "STAGING_REAP_INTERVAL": "off",
        **WEBHOOK_ENV,
        **(extra or {}),
    }
    with serving(env, workers) as running:
        yield running


def post_linear(
    server: Server,
    payload: object,
    delivery: str | None = None,
    body: bytes | None = None,
    timeout: float = 10,
) -> requests.Response:
    """`payload` (or `body` as it is) to the server's Linear webhook, signed as Linear does."""
    body = body if body is not None else json.dumps(payload).encode()
    headers = linear_headers(LINEAR_SECRET, body, delivery)
    return requests.post(server.url + LINEAR, data=body, headers=headers, timeout=timeout)
