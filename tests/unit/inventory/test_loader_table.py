"""The loader, one field at a time: valid values per kind load (normalised where the kind
says so), invalid ones fail with the one error line naming file, host or slot, and field."""

from __future__ import annotations

import json
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

VALID = [
    ("host", "user", "deploy_1", "deploy_1"),
    ("host", "port", 2222, 2222),
    ("host", "http_port", 1, 1),
    ("host", "public_port", 65535, 65535),
    ("host", "base_dir", "/srv/staging/", "/srv/staging"),
    ("host", "nginx_dir", "/", "/"),
    ("host", "key_file", "/root/.ssh/id_ed25519", "/root/.ssh/id_ed25519"),
    ("host", "connect_timeout", 600, 600.0),
    ("host", "tls_verify", False, False),
    ("host", "public_scheme", "http", "http"),
    ("host", "nginx_test_command", "sudo nginx -t", "sudo nginx -t"),
    ("host", "packages", ["nginx", "python3-venv", "g++"], ("nginx", "python3-venv", "g++")),
    ("host", "packages", _ABSENT, ()),
    ("host", "boot_services", [], ()),
    ("host", "boot_services", ["nginx.service", "getty@tty1"], ("nginx.service", "getty@tty1")),
    ("host", "postgres_host", "db-1.internal", "db-1.internal"),
    ("host", "listen_address", "0:0::1", "::1"),
    ("host", "listen_address", "", ""),
    ("host", "acme", True, True),
    ("host", "acme_email", "ops@example.com", "ops@example.com"),
    ("host", "acme_directory", "https://pebble:14000/dir", "https://pebble:14000/dir"),
    ("host", "acme_ca_bundle", "/etc/ssl/pebble/", "/etc/ssl/pebble"),
    ("app", "verify_timeout", 2.5, 2.5),
    ("app", "verify_timeout", _ABSENT, 60.0),
    ("app", "python", _ABSENT, "python3"),
    ("app", "requirements", ["req/base.txt", "req.txt"], ("req/base.txt", "req.txt")),
    ("app", "requirements", _ABSENT, ("requirements.txt",)),
    ("app", "github_repository", "justapply/job-search.v2", "justapply/job-search.v2"),
    ("app", "github_repository", _ABSENT, None),
    ("app", "auto_release_stop", True, True),
    ("slot", "id", 9999, 9999),
    ("slot", "ui_port", 1024, 1024),
    ("slot", "role", "staging", "staging"),
    ("slot", "database", "_db", "_db"),
]


@pytest.mark.parametrize(("where", "key", "value", "expected"), VALID)
def test_valid_values_load(tmp_path, where, key, value, expected):
    _, inventory = _load(tmp_path, where, key, value)
    (slot,) = inventory.slots.values()
    target = {"app": inventory.app, "host": inventory.hosts["h1"], "slot": slot}[where]
    assert getattr(target, key) == expected


INVALID = [
    # where, field, value, the problem after "field 'KEY': "
    ("host", "user", "Root", "'Root' is not valid"),
    ("host", "user", "", "required, must be a non-empty string"),
    ("host", "user", 0, "required, must be a non-empty string"),
    ("host", "service_user", "a b", "'a b' is not valid"),
    ("host", "port", 0, "0 must be between 1 and 65535"),
    ("host", "port", 70000, "70000 must be between 1 and 65535"),
    ("host", "https_port", "443", "'443' must be an integer"),
    ("host", "postgres_port", True, "True must be an integer"),
    ("host", "public_port", 1.5, "1.5 must be an integer"),
    ("host", "base_dir", "srv/staging", "'srv/staging' is not valid"),
    ("host", "tls_ca", "/etc/ssl/a b.pem", "'/etc/ssl/a b.pem' is not valid"),
    ("host", "systemd_dir", "/etc/\nx", "must not contain a newline"),
    ("host", "connect_timeout", 601, "601 must be between 1 and 600"),
    ("host", "connect_timeout", 1.5, "1.5 must be an integer"),
    ("host", "tls_verify", "yes", "must be true or false"),
    ("host", "protected", 1, "must be true or false"),
    ("host", "public_scheme", "ftp", "'ftp' is not valid"),
    ("host", "nginx_reload_command", "a\rb", "must not contain a newline"),
    ("host", "packages", ["Nginx"], "must be a list of Debian package names"),
    ("host", "packages", "nginx", "must be a list of Debian package names"),
    ("host", "boot_services", ["a b"], "must be a list of systemd unit names"),
    ("host", "address", "a b", "'a b' is not valid"),
    ("host", "address", _ABSENT, "required, must be a non-empty string"),
    ("host", "postgres_host", "db@x", "'db@x' is not a host name or IP address"),
    ("host", "listen_address", "localhost", "'localhost' is not an IP address"),
    ("host", "listen_address", 1, "1 is not an IP address"),
    ("host", "acme", "yes", "must be true or false"),
    ("host", "acme_directory", "http://x/dir", "'http://x/dir' is not valid"),
    ("host", "acme_email", "ops@localhost", "'ops@localhost' is not valid"),
    ("host", "acme_ca_bundle", "ca.pem", "'ca.pem' is not valid"),
    ("app", "name", "Job Search", "'Job Search' is not valid"),
    ("app", "repo_url", _ABSENT, "required, must be a non-empty string"),
    ("app", "ui_command", "run; rm -rf /", "'run; rm -rf /' is not valid"),
    ("app", "python", "python3\n", "must not contain a newline"),
    ("app", "verify_timeout", 0, "must be a positive number of seconds"),
    ("app", "verify_timeout", True, "must be a positive number of seconds"),
    ("app", "requirements", ["../x.txt"], "must be a list of relative file names"),
    ("app", "requirements", "requirements.txt", "must be a list of relative file names"),
    ("app", "github_repository", "owner/..", 'must be a GitHub repository like "owner/name"'),
    ("app", "github_repository", "a--b/c", 'must be a GitHub repository like "owner/name"'),
    ("app", "github_repository", 7, 'must be a GitHub repository like "owner/name"'),
    ("app", "auto_release_stop", "yes", "must be true or false"),
    ("slot", "identifier", "-x", "'-x' is not valid"),
    ("slot", "subdomain", "staging-4", "'staging-4' is not a valid DNS name"),
    ("slot", "subdomain", "a;b.example.net", "'a;b.example.net' is not a valid DNS name"),
    ("slot", "ui_port", 1023, "1023 must be between 1024 and 65535"),
    ("slot", "airflow_port", _ABSENT, "None must be an integer"),
    ("slot", "database", "db-4", "'db-4' is not valid"),
    ("slot", "role", "boss", "'boss' is not one of qa, staging"),
    ("slot", "host", "nowhere", "unknown host 'nowhere'"),
]
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
