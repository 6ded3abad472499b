"""Ports across every slot, service and candidate: port_clash over tables of slots, and the
loader's one-line error naming the slot and field."""

from __future__ import annotations

import pytest

from staging_ops.errors import BadInput
from staging_ops.inventory import checks, load_inventory
from tests.unit.inventory.test_loader_table import APP, HOST, SLOT, _toml


@pytest.mark.parametrize(
    ("ports", "clash"),
    [
        ([(4, (5004, 8084, 6004, 9084))], None),
        ([(4, (5004, 8084, 6004, 9084)), (5, (5005, 8085, 6005, 9085))], None),
        # Another slot's own port.
        (
            [(4, (5004, 8084, 6004, 9084)), (5, (5004, 8085, 6004, 9085))],
            (5, "ui_port", "5004 is already used by slot 4's ui_port"),
        ),
        # A UI port on another slot's Airflow port.
        (
            [(4, (5004, 8084, 6004, 9084)), (5, (8084, 8085, 9084, 9085))],
            (5, "ui_port", "8084 is already used by slot 4's airflow_port"),
        ),
        # A slot's own port on another slot's candidate.
        (
            [(4, (5004, 8084, 6004, 9084)), (5, (6004, 8085, 7004, 9085))],
            (5, "ui_port", "6004 is already used by slot 4's candidate UI port"),
        ),
        # A candidate on another slot's own port.
        (
            [(4, (5004, 8084, 5005, 8085)), (5, (5005, 8095, 5006, 8096))],
            (5, "ui_port", "5005 is already used by slot 4's candidate UI port"),
        ),
        (
            [(1, (5001, 8081, 6001, 9081)), (2, (5002, 9081, 6002, 10081))],
            (2, "airflow_port", "9081 is already used by slot 1's candidate Airflow port"),
        ),
        # A slot's candidate on its own other service.
        (
            [(1, (5001, 5501, 5501, 6001))],
            (
                1,
                "ui_port",
                "5501 (its candidate UI port, ui_port + candidate_port_offset) is "
                "already used by slot 1's airflow_port",
            ),
        ),
        (
            [(1, (65000, 8081, 66000, 9081))],
            (
                1,
                "ui_port",
                "66000 (its candidate UI port, ui_port + candidate_port_offset) is past 65535",
            ),
        ),
    ],
)
def test_port_clash(ports, clash):
    assert checks.port_clash(ports) == clash


def _inventory(tmp_path, host_extra: dict, slots: list[dict]):
    path = tmp_path / "inv.toml"
    text = "\n".join(
        [_toml("[app]", APP), _toml("[hosts.h1]", {**HOST, **host_extra})]
        + [_toml("[[slots]]", {**SLOT, **s}) for s in slots]
    )
    path.write_text(text)
    return path


def _slot(n: int, ui: int, airflow: int) -> dict:
    return {
        "id": n,
        "identifier": f"staging-{n}",
        "subdomain": f"staging-{n}.example.net",
        "database": f"db_{n}",
        "ui_port": ui,
        "airflow_port": airflow,
    }


def test_the_default_offset_is_1000(tmp_path):
    inventory = load_inventory(_inventory(tmp_path, {}, [_slot(4, 5004, 8084)]))
    slot = inventory.slots[4]
    assert slot.candidate_ports(inventory.host_of(slot)) == (6004, 9084)


def test_an_offset_that_lands_a_candidate_on_another_slot_is_refused(tmp_path):
    path = _inventory(
        tmp_path, {"candidate_port_offset": 1}, [_slot(4, 5004, 8084), _slot(5, 5005, 8085)]
    )
    with pytest.raises(BadInput) as caught:
        load_inventory(path)
    assert str(caught.value) == (
        f"{path}: slot 5: field 'ui_port': 5005 is already used by slot 4's candidate UI port"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [(0, "0 must be between 1 and 60000"), ("1000", "'1000' must be an integer")],
)
def test_the_offset_is_validated(tmp_path, value, problem):
    path = _inventory(tmp_path, {"candidate_port_offset": value}, [_slot(4, 5004, 8084)])
    with pytest.raises(BadInput) as caught:
        load_inventory(path)
    assert str(caught.value) == f"{path}: host 'h1': field 'candidate_port_offset': {problem}"


def test_the_projects_inventory_has_no_clash():
    inventory = load_inventory("inventory/staging.toml")
    ports = [
        p
        for s in inventory.slots.values()
        for p in (s.ui_port, s.airflow_port, *s.candidate_ports(inventory.host_of(s)))
    ]
    assert len(ports) == len(set(ports)) == 40
