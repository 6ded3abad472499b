"""The inventory the web app runs with, for the dashboard and the webhooks alike (a module of
its own so that neither reaches into the other for it)."""

from __future__ import annotations

import logging
import os

from staging_ops.errors import BadInput
from staging_ops.inventory import Inventory, inventory_path, load_inventory

log = logging.getLogger(__name__)


def inventory_or_none() -> Inventory | None:
    """The inventory STAGING_INVENTORY names (or the default one); None, logged, when it cannot
    be loaded — the dashboard then still shows the registry, without health and links."""
    try:
        return load_inventory()
    except BadInput as exc:
        log.warning("dashboard without inventory: %s", exc)
        return None


def check_inventory() -> None:
    """At server start: an inventory that is named (STAGING_INVENTORY) or present at the
    default path must load, else BadInput (exit 2) before anything starts. Without this, an
    unknown key or bad value would only be logged by each worker, which would then serve
    without it: webhooks freeing nothing, `auto_release_stop` off, the dashboard without
    health. Only no inventory at all is served without one."""
    path = inventory_path()
    if os.environ.get("STAGING_INVENTORY") or path.exists():
        load_inventory(path)
