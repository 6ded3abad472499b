"""The Staging API served for a test (waitress on loopback, a thread of this process) on a
real registry database, and a client for it: `running_api`, the `api` fixture (a fresh
database of its own, for tests that change things) and `Api`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
import requests
from flask import Flask

from staging_ops.inventory import load_inventory
from staging_ops.registry import PostgresRegistry, migrate
from staging_ops.web import create_app
from staging_ops.web.auth import mint_token
from staging_ops.web.server import BackgroundServer

SECRET = "test-secret-for-the-staging-api-0123456789"
BASE = "/api/staging"
ADMIN = "<admin>"


@dataclass
class Api:
    url: str
    dsn: str
    app: Flask

    def call(
        self, method: str, path: str, token: str | None = ADMIN, **kwargs: object
    ) -> requests.Response:
        """A request with `token` (ADMIN: a fresh admin token; None: no Authorization)."""
        headers = kwargs.pop("headers", {}) or {}
        if token is ADMIN:
            token = mint_token(SECRET, "admin@example.com")
        if token is not None:
            headers = {"Authorization": f"Bearer {token}", **headers}
        return requests.request(
            method, self.url + BASE + path, headers=headers, timeout=10, **kwargs
        )

    def events(self) -> int:
        conn = psycopg2.connect(self.dsn)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM marts.staging_slot_events")
            count = cur.fetchone()[0]
        conn.close()
        return count


@contextmanager
def running_api(dsn: str, inventory_path: Path) -> Iterator[Api]:
    migrate(dsn, load_inventory(inventory_path))
    registry = PostgresRegistry(dsn, max_connections=4, cache_reads=True)
    app = create_app(registry, jwt_secret=SECRET)
    # A view that fails unexpectedly, to see what a client gets from an internal error.
    app.add_url_rule(f"{BASE}/boom", "boom", lambda: 1 / 0)
    with BackgroundServer(app, threads=3) as server:
        yield Api(server.url, dsn, app)
    registry.close()


@pytest.fixture
def api(registry_dsn: str, test_inventory_path: Path) -> Iterator[Api]:
    """An API on a fresh database of its own, for tests that change things."""
    with running_api(registry_dsn, test_inventory_path) as running:
        yield running
