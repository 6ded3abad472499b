"""provision-all --json's report (provision.report): a table of records -> the exact JSON it
prints; the registry's migrations decide the run's changed, failed and exit code with the
hosts'."""

from __future__ import annotations

import pytest

from staging_ops.provision.report import (
    HostReport,
    ProvisionReport,
    RegistryMigrations,
    SlotReload,
)


@pytest.mark.parametrize(
    ("reload", "shape"),
    [
        (
            SlotReload("staging-4", "env changed", "hand-over", True, None),
            {
                "slot": "staging-4",
                "reason": "env changed",
                "how": "hand-over",
                "ok": True,
                "down_seconds": None,
            },
        ),
        (
            SlotReload("staging-5", "unit changed", "restart in place", True, 2.5),
            {
                "slot": "staging-5",
                "reason": "unit changed",
                "how": "restart in place",
                "ok": True,
                "down_seconds": 2.5,
            },
        ),
        (
            SlotReload("staging-6", "env changed", "hand-over", False, error="verify failed"),
            {
                "slot": "staging-6",
                "reason": "env changed",
                "how": "hand-over",
                "ok": False,
                "error": "verify failed",
            },
        ),
        # A run cut off during the reload: only what it was to do.
        (SlotReload("staging-7", "env changed"), {"slot": "staging-7", "reason": "env changed"}),
    ],
)
def test_a_reload_as_json(reload, shape):
    assert reload.as_json() == shape
    assert list(reload.as_json()) == list(shape)


@pytest.mark.parametrize(
    ("registry", "shape", "changed", "failed", "code"),
    [
        (None, {}, 0, False, 0),
        (RegistryMigrations(3, 0.25), {"changed": 3, "seconds": 0.25}, 3, False, 0),
        (
            RegistryMigrations(0, 1.5, "cannot connect"),
            {"changed": 0, "error": "cannot connect", "seconds": 1.5},
            0,
            True,
            1,
        ),
    ],
)
def test_the_registry_in_the_report(registry, shape, changed, failed, code):
    report = ProvisionReport([HostReport("h1", exit_code=0)], registry=registry)
    data = report.as_dict()
    assert data["registry"] == shape and list(data["registry"]) == list(shape)
    assert (data["changed"], data["failed"], report.exit_code) == (changed, failed, code)


def test_bad_input_on_every_failed_host_is_exit_2_unless_the_registry_failed_too():
    refused = HostReport("h1", error="bad inventory", exit_code=2)
    assert ProvisionReport([refused]).exit_code == 2
    broken = RegistryMigrations(0, 0.1, "cannot connect")
    assert ProvisionReport([refused], registry=broken).exit_code == 1


def test_a_host_report_as_json():
    host = HostReport("h1", seconds=1.23456, reloads=[SlotReload("staging-4", "env changed")])
    assert host.as_dict() == {
        "host": "h1",
        "changed": 0,
        "failed": False,
        "error": None,
        "commands": 0,
        "uploads": 0,
        "seconds": 1.235,
        "waiting_for_first_deploy": [],
        "changes": [],
        "reloads": [{"slot": "staging-4", "reason": "env changed"}],
        "steps": [],
    }
