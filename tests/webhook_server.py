"""`invoke api.serve` started for the webhook and scheduled-reap tests, with the webhook
secrets (and whatever else a test sets) in its environment: the real server, as operators run
it, on a real registry."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.test_api_server import SECRET, Server, serving

GITHUB_SECRET = "github-webhook-secret-for-tests-0123456789"
LINEAR_SECRET = "linear-webhook-secret-for-tests-0123456789"
WEBHOOK_ENV = {
    "STAGING_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
    "STAGING_LINEAR_WEBHOOK_SECRET": LINEAR_SECRET,
}


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
