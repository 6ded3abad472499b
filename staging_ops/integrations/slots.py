"""What an event says of its slot: the public URL (the same one on every event, so that
Linear's attachment, one per URL and issue, is updated rather than added), the dashboard's
page for it, and the GitHub repository, from the inventory."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from staging_ops.errors import BadInput
from staging_ops.integrations import config
from staging_ops.integrations.events import slot_page
from staging_ops.inventory import Inventory, load_inventory
from staging_ops.render import public_url


@dataclass(frozen=True)
class SlotFacts:
    url: str
    repository: str | None
    log_url: str | None


@lru_cache(maxsize=1)
def _default_inventory() -> Inventory | None:
    try:
        return load_inventory()
    except BadInput:
        return None


def slot_facts(
    inventory: Inventory | None, slot_id: int, identifier: str, subdomain: str | None
) -> SlotFacts:
    inventory = inventory or _default_inventory()
    slot = inventory.slots.get(slot_id) if inventory else None
    settings: Any = config.from_env()
    if inventory is not None and slot is not None:
        url = public_url(inventory.hosts[slot.host], slot)
    else:
        url = f"https://{subdomain or identifier}"
    repository = inventory.app.github_repository if inventory is not None else None
    return SlotFacts(url, repository, slot_page(settings.dashboard_url, identifier))
