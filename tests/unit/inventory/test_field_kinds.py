"""The inventory's fields and their kinds: every Kind has a check, every field has a Kind or
is read explicitly by the loader, and a Kind on a new field is all the loader needs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from staging_ops.inventory import checks
from staging_ops.inventory.model import (
    App,
    Host,
    Kind,
    Port,
    RemotePath,
    Slot,
    field_kinds,
    file_keys,
)

# Fields without a Kind: read by load.py itself (marked LOADED, the reason there), or not
# from the file (a host's name is its table's; set_in_inventory, which of its SSH settings
# the table set, for the ssh config to fill the others).
NOT_FROM_THE_FILE = {"name", "set_in_inventory"}
EXPLICIT = {
    App: {"env"},
    Host: {"name", "postgres_host", "listen_address", "set_in_inventory"},
    Slot: {"host"},
}


def test_every_kind_has_a_check() -> None:
    assert set(checks.CHECKS) == set(Kind)


@pytest.mark.parametrize("cls", [App, Host, Slot])
def test_every_field_has_a_kind_or_is_read_explicitly(cls: type) -> None:
    without = {name for name in cls.__dataclass_fields__ if name not in field_kinds(cls)}
    assert without == EXPLICIT[cls]
    # Those load.py reads are known keys of the file (file_keys); the rest are refused.
    assert without & set(file_keys(cls)) == EXPLICIT[cls] - NOT_FROM_THE_FILE


def test_kinds_are_found_through_optional_types_in_declaration_order() -> None:
    kinds = field_kinds(Host)
    assert kinds["key_file"] is Kind.PATH  # RemotePath | None
    assert kinds["public_port"] is Kind.PORT  # Port | None
    assert kinds["boot_services"] is Kind.UNIT_NAMES
    assert list(kinds)[:3] == ["address", "protected", "user"]


def test_a_new_field_needs_only_its_kind() -> None:
    @dataclass(frozen=True)
    class Example:
        plain: str
        port: Port = 1
        path: RemotePath | None = None

    assert field_kinds(Example) == {"port": Kind.PORT, "path": Kind.PATH}
