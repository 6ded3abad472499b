"""The inventory the web app runs with, for the dashboard and the webhooks alike (a module of
its own so that neither reaches into the other for it)."""

from __future__ import annotations

import logging

from staging_ops.errors import BadInput
from staging_ops.inventory import Inventory, load_inventory

log = logging.getLogger(__name__)


def inventory_or_none() -> Inventory | None:
    """The inventory STAGING_INVENTORY names (or the default one); None, logged, when it cannot
    be loaded — the dashboard then still shows the registry, without health and links."""
    try:
        return load_inventory()
    except BadInput as exc:
        log.warning("dashboard without inventory: %s", exc)
        return None
