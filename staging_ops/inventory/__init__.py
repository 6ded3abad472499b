"""The inventory: model.py (App, Host, Slot, Inventory; each field's Kind), checks.py (one
check per Kind) and load.py (TOML in, validated)."""

from staging_ops.inventory.load import (
    DEFAULT_INVENTORY,
    PRODUCTION_ADDRESS,
    inventory_path,
    is_production,
    load_inventory,
)
from staging_ops.inventory.model import ROLES, App, Host, Inventory, Slot

__all__ = [
    "DEFAULT_INVENTORY",
    "PRODUCTION_ADDRESS",
    "ROLES",
    "App",
    "Host",
    "Inventory",
    "Slot",
    "inventory_path",
    "is_production",
    "load_inventory",
]
