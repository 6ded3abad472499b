"""`invoke api.serve` started for the webhook and scheduled-reap tests, with the webhook
secrets (and whatever else a test sets) in its environment: the real server, as operators run
it, on a real registry."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from staging_ops.web.auth import mint_token
from tests.conftest import INVOKE, ROOT, free_port
from tests.test_api_server import SECRET, Server, listening_sockets, wait_for, wait_listening

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
    """The server on `registry_dsn` (already migrated); stopped with SIGTERM afterwards. Its
    output is kept in the process (read it after it stopped, with communicate)."""
    port = free_port()
    env = {
        **os.environ,
        "STAGING_REGISTRY_DSN": registry_dsn,
        "STAGING_API_JWT_SECRET": SECRET,
        "STAGING_INVENTORY": str(inventory),
        "STAGING_REAP_INTERVAL": "off",
        **WEBHOOK_ENV,
        **(extra or {}),
    }
    process = subprocess.Popen(
        [INVOKE, "api.serve", "--port", str(port), "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_listening(process, port)
        wait_for(lambda: listening_sockets(port) == workers)
        yield Server(process, port, mint_token(SECRET, "qa@example.com"))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
