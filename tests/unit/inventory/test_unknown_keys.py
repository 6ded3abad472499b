"""Unknown keys are refused in every table of the inventory, with one line naming the file,
the table, the key and the nearest known key: a misspelt key would otherwise be ignored and
its default used (`verify_timout = 90` gives a 60 s timeout)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import pytest

from staging_ops.errors import BadInput
from staging_ops.inventory import App, Host, Inventory, Slot, load_inventory
from staging_ops.inventory.load import _Loader
from staging_ops.inventory.model import LOADED, Kind, field_kinds, file_keys
from tests.unit.inventory.test_loader_table import APP, HOST, SLOT, _toml

PROTECTED = {"address": "10.9.9.9", "protected": True}


def _write(tmp_path: Path, top="", app=APP, host=HOST, protected=PROTECTED, slot=SLOT, tail=""):
    path = tmp_path / "inv.toml"
    parts = [top, _toml("[app]", app), _toml("[hosts.h1]", host)]
    parts += [_toml("[hosts.prod]", protected), _toml("[[slots]]", slot), tail]
    path.write_text("\n".join(parts))
    return path


def _refused(path: Path) -> str:
    with pytest.raises(BadInput) as err:
        load_inventory(path)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("where", "change", "expected"),
    [
        ("top", {"top": "verison = 2\n"}, "top level: unknown key 'verison'"),
        (
            "app",
            {"app": {**APP, "verify_timout": 90}},
            "[app]: unknown key 'verify_timout' (did you mean 'verify_timeout'?)",
        ),
        (
            "host",
            {"host": {**HOST, "conect_timeout": 5}},
            "[hosts.h1]: unknown key 'conect_timeout' (did you mean 'connect_timeout'?)",
        ),
        (
            # A protected host's other keys are never read, but a typo there is still one.
            "protected host",
            {"protected": {**PROTECTED, "protectd": True}},
            "[hosts.prod]: unknown key 'protectd' (did you mean 'protected'?)",
        ),
        (
            "slot",
            {"slot": {**SLOT, "airflow_prot": 8084}},
            "[[slots]] #1 (id 4): unknown key 'airflow_prot' (did you mean 'airflow_port'?)",
        ),
        (
            "slot without an id",
            {"slot": {k: v for k, v in SLOT.items() if k != "id"} | {"ids": 4}},
            "[[slots]] #1: unknown key 'ids' (did you mean 'id'?)",
        ),
        # Not read from the file: a host's name is its table's.
        ("host's name", {"host": {**HOST, "name": "h2"}}, "[hosts.h1]: unknown key 'name'"),
        # A sub-table nobody declared is an unknown key of its parent table.
        ("sub-table of [app]", {"tail": "[app.envv]\nA = 'b'\n"}, "[app]: unknown key 'envv'"),
        (
            "sub-table of a host",
            {"tail": "[hosts.h1.tls]\nverify = false\n"},
            "[hosts.h1]: unknown key 'tls'",
        ),
    ],
)
def test_an_unknown_key_in_any_table_is_refused_naming_file_table_and_key(
    tmp_path, where, change, expected
):
    path = _write(tmp_path, **change)
    message = _refused(path)
    # The nearest known key follows where there is one (the tests that need it name it).
    assert message.startswith(f"{path}: {expected}"), (where, message)


def test_no_close_key_names_none(tmp_path):
    path = _write(tmp_path, app={**APP, "zzzzzz": 1})
    assert _refused(path) == f"{path}: [app]: unknown key 'zzzzzz'"


def test_an_unknown_key_is_named_before_what_it_leaves_missing(tmp_path):
    """`ui_comand` for `ui_command`: the typo is the problem, not the required field."""
    app = {k: v for k, v in APP.items() if k != "ui_command"} | {"ui_comand": "x"}
    path = _write(tmp_path, app=app)
    assert "unknown key 'ui_comand' (did you mean 'ui_command'?)" in _refused(path)


def test_every_field_the_loader_reads_is_a_known_key():
    """The known keys are the model's fields with a Kind plus those marked LOADED: what
    load.py reads itself (postgres_host, listen_address, a slot's host) is known, and a
    field with a Kind joins without more code."""
    assert set(field_kinds(Host)) | {"postgres_host", "listen_address"} == set(file_keys(Host))
    assert "sftp_server" in file_keys(Host)  # the README documents it as a setting
    assert set(field_kinds(Slot)) | {"host"} == set(file_keys(Slot))
    assert set(field_kinds(App)) | {"env"} == set(file_keys(App))
    assert set(file_keys(Inventory)) == {"app", "hosts", "slots", "deploys"}


@dataclasses.dataclass(frozen=True)
class _Limits:
    cpu: Annotated[float, Kind.SECONDS] = 1.0


@dataclasses.dataclass(frozen=True)
class _WithSubTables:
    name: Annotated[str, Kind.TEXT]
    limits: Annotated[_Limits, LOADED] = _Limits()
    env: Annotated[dict[str, str], LOADED] = dataclasses.field(default_factory=dict)
    workers: Annotated[tuple[_Limits, ...], LOADED] = ()


def test_a_sub_table_of_a_model_class_has_its_keys_checked_and_a_mapping_does_not(tmp_path):
    """A key whose value is a table of another dataclass ([app.limits], or an array of them:
    [[app.workers]]) has that class's keys; a free-form mapping ([app.env]: names to strings)
    has the names the file chooses."""
    loader = _Loader(tmp_path / "inv.toml", {})
    raw = {
        "name": "x",
        "limits": {"cpu": 2.0},
        "env": {"ANY_NAME": "v"},
        "workers": [{"cpu": 1.0}, {"cpu": 2.0}],
    }
    loader.known_keys(_WithSubTables, raw, "[app]")
    with pytest.raises(BadInput) as err:
        loader.known_keys(_WithSubTables, {**raw, "limits": {"cpus": 2.0}}, "[app]")
    assert str(err.value).endswith("[app.limits]: unknown key 'cpus' (did you mean 'cpu'?)")
    with pytest.raises(BadInput) as err:
        loader.known_keys(_WithSubTables, {**raw, "workers": [{"cpu": 1}, {"cpu_": 1}]}, "[app]")
    assert str(err.value).endswith("[[app.workers]] #2: unknown key 'cpu_' (did you mean 'cpu'?)")


def test_the_shipped_inventory_has_only_known_keys():
    load_inventory("inventory/staging.toml")
