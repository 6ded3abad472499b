"""The Staging web app: the Staging API and the Staging Dashboard on registry.py.

`create_app()` builds the standalone app `invoke api.serve` (or `python -m staging_ops.web`)
runs under granian: the API at /api/staging and the dashboard at /staging. Views reach the
registry as `current_app.extensions["staging_registry"]`. The Campaign UI mounts only the
API: `app.register_blueprint(api_blueprint(registry, secret))`.
"""

from __future__ import annotations

import os

from flask import Flask

from staging_ops import slot_access
from staging_ops.integrations.outbox import start_loop
from staging_ops.inventory import Inventory
from staging_ops.registry.changes import SHARED_STAMP_ENV
from staging_ops.registry.deploy_queue import DeployQueue
from staging_ops.slots.model import SlotRegistry
from staging_ops.web import auth
from staging_ops.web.api import api_blueprint
from staging_ops.web.dashboard import register_dashboard
from staging_ops.web.errors import register_error_handlers
from staging_ops.web.server_deploys import ServerDeploys
from staging_ops.web.webhooks import register_webhooks

# One pooled connection per worker thread (plus one spare).
POOL_SIZE = 5

__all__ = ["api_blueprint", "close_app", "create_app"]


def close_app(app: Flask) -> None:
    """Close the app's database connections (the registry's and the deploy queue's)."""
    app.extensions["staging_registry"].close()
    queue = app.extensions.get("staging_deploy_queue")
    if queue is not None:
        queue.close()


def deploy_queue(registry: SlotRegistry) -> DeployQueue | None:
    """The deploy queue (and the claims' settings) on the registry's database, if it has
    one (an in-memory or API registry has none)."""
    dsn = getattr(registry, "dsn", None)
    if not dsn:
        return None
    from staging_ops.registry.deploy_queue import DeployQueue

    return DeployQueue(dsn)


def server_deploys(queue: DeployQueue | None, inventory: Inventory | None) -> ServerDeploys | None:
    """Server deploys, when the inventory turns them on (`[deploys] server = true`) and the
    registry is a database; else None (the deploy endpoints answer 404)."""
    if queue is None or inventory is None or not inventory.deploys.server:
        return None
    return ServerDeploys(inventory, queue)


def create_app(
    registry: SlotRegistry | None = None,
    *,
    jwt_secret: str | None = None,
    dsn: str | None = None,
    pool_size: int = POOL_SIZE,
    inventory: Inventory | None = None,
) -> Flask:
    """The app. Defaults come from the environment: STAGING_REGISTRY_DSN (unless `registry`
    or `dsn` is given), STAGING_API_JWT_SECRET (unless `jwt_secret` is) and, for the
    dashboard's health checks and links, STAGING_INVENTORY (unless `inventory` is; the
    dashboard works without one)."""
    secret = jwt_secret or auth.secret_from_env()
    # The dashboard's health checks log in with it: a malformed value fails here, at start.
    slot_access.credentials_from_env()
    if registry is None:
        from staging_ops.registry import PostgresRegistry
        from staging_ops.registry.from_env import require_dsn

        # A server answers the slot list from memory until the registry changes.
        registry = PostgresRegistry(
            dsn or require_dsn(),
            max_connections=pool_size,
            cache_reads=True,
            shared_stamp=os.environ.get(SHARED_STAMP_ENV) or None,
        )
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["staging_registry"] = registry
    if inventory is None:
        from staging_ops.web.app_inventory import inventory_or_none

        inventory = inventory_or_none()
    queue = deploy_queue(registry)
    app.extensions["staging_deploy_queue"] = queue  # closed with the registry (close_app)
    deploys = server_deploys(queue, inventory)
    app.register_blueprint(api_blueprint(registry, secret, deploys, queue))
    register_dashboard(app, registry, secret, inventory)
    register_webhooks(app, registry, inventory, deploys)
    register_error_handlers(app)
    # GitHub and Linear: this process delivers (and retries) what the outbox holds.
    if getattr(registry, "dsn", None):
        start_loop(registry.dsn)  # type: ignore[attr-defined]
    return app
