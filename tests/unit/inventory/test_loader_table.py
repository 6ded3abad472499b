"""The loader, one field at a time: valid values per kind load (normalised where the kind
says so), invalid ones fail with the one error line naming file, host or slot, and field."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from staging_ops.errors import BadInput
from staging_ops.inventory import checks, load_inventory
from staging_ops.inventory.model import Kind

APP = {
    "name": "job-search",
    "repo_url": "git@example.com:x/y.git",
    "ui_command": "{current}/bin/ui --port ${UI_PORT}",
    "airflow_webserver_command": "{current}/bin/airflow webserver",
    "airflow_scheduler_command": "{current}/bin/airflow scheduler",
    "migrate_command": "{release}/bin/migrate",
}
HOST = {"address": "10.0.0.2"}
SLOT = {
    "id": 4,
    "identifier": "staging-4",
    "subdomain": "staging-4.example.net",
    "ui_port": 5004,
    "airflow_port": 8084,
    "database": "db_4",
    "role": "qa",
    "host": "h1",
}


def _toml(table: str, values: dict) -> str:
    # JSON's strings, numbers, booleans and lists of them are TOML's too.
    return f"{table}\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


def _write(tmp_path: Path, app=APP, host=HOST, slot=SLOT, extra_hosts: str = "") -> Path:
    path = tmp_path / "inv.toml"
    text = "\n".join(
        [_toml("[app]", app), _toml("[hosts.h1]", host), extra_hosts, _toml("[[slots]]", slot)]
    )
    path.write_text(text)
    return path


def _load(tmp_path: Path, where: str, key: str, value: object):
    tables = {"app": APP, "host": HOST, "slot": SLOT}
    changed = dict(tables[where])
    if value is _ABSENT:
        changed.pop(key, None)
    else:
        changed[key] = value
    path = _write(tmp_path, **{where: changed})
    return path, load_inventory(path)


_ABSENT = object()

# The table itself: fields.toml beside this file (a value absent there: the field is left out).
FIELDS = tomllib.loads((Path(__file__).with_name("fields.toml")).read_text())
VALID = [
    (
        r["where"],
        r["field"],
        r.get("value", _ABSENT),
        None if r.get("expected_none") else r["expected"],
    )
    for r in FIELDS["valid"]
]
INVALID = [
    (r["where"], r["field"], r.get("value", _ABSENT), r["problem"]) for r in FIELDS["invalid"]
]


@pytest.mark.parametrize(("where", "key", "value", "expected"), VALID)
def test_valid_values_load(tmp_path, where, key, value, expected):
    _, inventory = _load(tmp_path, where, key, value)
    (slot,) = inventory.slots.values()
    target = {"app": inventory.app, "host": inventory.hosts["h1"], "slot": slot}[where]
    loaded = getattr(target, key)
    # TOML has lists where the model keeps tuples.
    assert (list(loaded) if isinstance(loaded, tuple) else loaded) == expected


WHERE = {"app": "[app]", "host": "host 'h1'", "slot": "slot 4"}


@pytest.mark.parametrize(("where", "key", "value", "problem"), INVALID)
def test_invalid_values_fail_with_one_line_naming_file_place_and_field(
    tmp_path, where, key, value, problem
):
    with pytest.raises(BadInput) as err:
        _load(tmp_path, where, key, value)
    path = tmp_path / "inv.toml"
    assert str(err.value) == f"{path}: {WHERE[where]}: field '{key}': {problem}"


@pytest.mark.parametrize(
    ("value", "where"), [(10000, "slot 10000"), (0, "slot 0"), ("4", "slot #1")]
)
def test_a_bad_slot_id_is_named_by_its_value_or_its_position(tmp_path, value, where):
    with pytest.raises(BadInput) as err:
        _load(tmp_path, "slot", "id", value)
    assert f": {where}: field 'id': " in str(err.value)


def test_a_protected_host_is_read_for_its_address_only(tmp_path):
    """Nothing else of production is read, so nothing else of it can be wrong; but no slot
    may be placed on it."""
    production = _toml("[hosts.prod]", {"address": "10.9.9.9", "protected": True, "port": "x"})
    path = _write(tmp_path, extra_hosts=production)
    assert load_inventory(path).hosts["prod"].port == 22
    path = _write(tmp_path, slot={**SLOT, "host": "prod"}, extra_hosts=production)
    with pytest.raises(BadInput, match="slot 4: field 'host': host 'prod' is protected"):
        load_inventory(path)


@pytest.mark.parametrize(
    ("changes", "key", "problem"),
    [
        (
            {"tls_certificate": "/etc/ssl/a.pem"},
            "tls_certificate",
            "'/etc/ssl/a.pem': with acme = true it must be "
            "/etc/letsencrypt/live/NAME/fullchain.pem",
        ),
        (
            {"tls_certificate_key": "/etc/letsencrypt/live/other/privkey.pem"},
            "tls_certificate_key",
            "'/etc/letsencrypt/live/other/privkey.pem': with acme = true it must be "
            "/etc/letsencrypt/live/justapply.net/privkey.pem",
        ),
    ],
)
def test_with_acme_the_certificate_is_certbots_lineage(tmp_path, changes, key, problem):
    path = _write(tmp_path, host={**HOST, "acme": True, **changes})
    with pytest.raises(BadInput) as err:
        load_inventory(path)
    assert str(err.value) == f"{path}: host 'h1': field '{key}': {problem}"


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (Kind.PATH, "/a//", "/a"),
        (Kind.CONNECT_SECONDS, 5, 5.0),
        (Kind.SECONDS, 1, 1.0),
        (Kind.SLOT_ID, 1, 1),
        (Kind.UNIT_COMMAND, "a=${B} 'c' \"d\" *", "a=${B} 'c' \"d\" *"),
        (Kind.RELATIVE_FILES, [], ()),
    ],
)
def test_checks_return_the_models_value(kind, value, expected):
    assert checks.CHECKS[kind](value) == expected
