"""Inventory loading and validation: every bad input names file, slot and field; exit 2."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from staging_ops.errors import BadInput
from staging_ops.inventory import load_inventory
from tests.conftest import DEFAULT_INVENTORY, run_invoke

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed"


def test_real_inventory_matches_the_registry_table():
    inventory = load_inventory(DEFAULT_INVENTORY)
    assert sorted(inventory.slots) == list(range(1, 11))
    for n, slot in inventory.slots.items():
        assert slot.identifier == f"staging-{n}"
        assert slot.subdomain == f"staging-{n}.justapply.net"
        assert slot.ui_port == 5000 + n
        assert slot.airflow_port == 8080 + n
        assert slot.database == f"job_search_staging_{n}"
        assert slot.role == ("staging" if n == 10 else "qa")
    assert inventory.hosts["production"].protected
    assert inventory.hosts["production"].address == "167.99.0.168"
    assert [h.name for h in inventory.target_hosts()] == ["staging"]
    assert inventory.hosts["staging"].address == "staging.justapply.net"


def test_inventory_agrees_with_the_users_seed_table_when_present():
    seeds = sorted(SEED.glob("*.txt")) if SEED.exists() else []
    if not seeds:
        pytest.skip("the users' registry document is not beside this checkout")
    rows = re.findall(
        r"^\| (\d+) \| `(staging-\d+)` \| `([^`]+)` \| (\d+) \| (\d+) \| `([^`]+)` \|",
        seeds[0].read_text(),
        re.M,
    )
    assert len(rows) == 10
    inventory = load_inventory(DEFAULT_INVENTORY)
    for sid, ident, sub, ui, af, db in rows:
        slot = inventory.slots[int(sid)]
        assert (
            slot.identifier,
            slot.subdomain,
            slot.ui_port,
            slot.airflow_port,
            slot.database,
        ) == (ident, sub, int(ui), int(af), db)


def _mutate(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    text = DEFAULT_INVENTORY.read_text()
    assert old in text, old
    path = tmp_path / "inv.toml"
    path.write_text(text.replace(old, new, count))
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'subdomain = "staging-4.justapply.net"',
            'subdomain = "staging-4.justapply.net; x"',
            "slot 4: field 'subdomain'",
        ),
        (
            'subdomain = "staging-4.justapply.net"',
            'subdomain = "staging-4 {.justapply.net"',
            "slot 4: field 'subdomain'",
        ),
        (
            'subdomain = "staging-4.justapply.net"',
            'subdomain = "staging-3.justapply.net"',
            "slot 4: field 'subdomain'",
        ),
        ("ui_port = 5004", "ui_port = 80", "slot 4: field 'ui_port'"),
        ("ui_port = 5004", 'ui_port = "5004"', "slot 4: field 'ui_port'"),
        ("ui_port = 5004", "ui_port = 70000", "slot 4: field 'ui_port'"),
        ("ui_port = 5004", "ui_port = 8083", "slot 4: field 'ui_port'"),
        ("airflow_port = 8084", "airflow_port = 5004", "slot 4: field 'airflow_port'"),
        (
            'database = "job_search_staging_4"',
            'database = "job-search; drop"',
            "slot 4: field 'database'",
        ),
        (
            'database = "job_search_staging_4"',
            'database = "job_search_staging_3"',
            "slot 4: field 'database'",
        ),
        (
            'role = "qa"\nhost = "staging"\n\n[[slots]]\nid = 5',
            'role = "boss"\nhost = "staging"\n\n[[slots]]\nid = 5',
            "slot 4: field 'role'",
        ),
        ("id = 4\n", "id = 3\n", "slot 3: field 'id'"),
        (
            'host = "staging"\n\n[[slots]]\nid = 5',
            'host = "production"\n\n[[slots]]\nid = 5',
            "slot 4: field 'host'",
        ),
        (
            'host = "staging"\n\n[[slots]]\nid = 5',
            'host = "nowhere"\n\n[[slots]]\nid = 5',
            "slot 4: field 'host'",
        ),
    ],
)
def test_bad_inventory_names_file_slot_and_field(tmp_path, old, new, expected):
    path = _mutate(tmp_path, old, new)
    with pytest.raises(BadInput) as err:
        load_inventory(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_malformed_toml_names_file_and_line(tmp_path):
    path = _mutate(tmp_path, "ui_port = 5004", "ui_port = = 5004")
    with pytest.raises(BadInput, match=r"line \d+"):
        load_inventory(path)
    result = run_invoke("render", "--slot", "4", env={"STAGING_INVENTORY": str(path)})
    assert result.returncode == 2
    assert str(path) in result.stderr and "line" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_inventory_exits_2(tmp_path):
    missing = tmp_path / "nope.toml"
    result = run_invoke("render", env={"STAGING_INVENTORY": str(missing)})
    assert result.returncode == 2
    assert f"{missing}: inventory file not found" in result.stderr


@pytest.mark.parametrize("bad", ["0", "11", "-1", "abc", "4;ls"])
def test_bad_slot_exits_2_listing_valid_slots(bad, tmp_path):
    out = tmp_path / "out"
    result = run_invoke(
        "render",
        f"--slot={bad}",
        "--out",
        str(out),
        env={"STAGING_INVENTORY": str(DEFAULT_INVENTORY)},
    )
    assert result.returncode == 2, result.stderr
    assert "valid slots are 1-10" in result.stderr
    assert not out.exists()


def test_invoke_config_selects_inventory(tmp_path):
    alt = _mutate(
        tmp_path, 'subdomain = "staging-4.justapply.net"', 'subdomain = "qa-four.justapply.net"'
    )
    (tmp_path / "invoke.yaml").write_text(f"staging:\n  inventory: {alt}\n")
    env = {"INVOKE_RUNTIME_CONFIG": str(tmp_path / "invoke.yaml"), "STAGING_INVENTORY": ""}
    result = run_invoke("render", "--slot", "4", env=env)
    assert result.returncode == 0, result.stderr
    assert "server_name qa-four.justapply.net;" in result.stdout


PRODUCTION_BLOCK = '[hosts.production]\naddress = "167.99.0.168"\nprotected = true\n'


def _refused(path: Path) -> str:
    with pytest.raises(BadInput) as err:
        load_inventory(path)
    assert str(path) in str(err.value)
    return str(err.value)


def test_production_address_under_a_second_name_is_refused(tmp_path):
    path = _mutate(
        tmp_path,
        PRODUCTION_BLOCK,
        PRODUCTION_BLOCK + '\n[hosts.prod-alias]\naddress = "167.99.0.168"\n',
    )
    message = _refused(path)
    assert "host 'prod-alias': field 'address'" in message
    assert "protected host 'production'" in message
    # Through the CLI: exit 2, before anything is touched.
    result = run_invoke("render", "--slot", "1", env={"STAGING_INVENTORY": str(path)})
    assert result.returncode == 2, result.stderr
    assert "prod-alias" in result.stderr and "production" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("protected_address", "alias"),
    [
        ("prod.justapply.net", "PROD.justapply.net."),
        ("10.9.8.7", "::ffff:10.9.8.7"),
    ],
)
def test_a_protected_hosts_address_in_another_spelling_is_refused(
    tmp_path, protected_address, alias
):
    path = _mutate(
        tmp_path,
        PRODUCTION_BLOCK,
        f'[hosts.production]\naddress = "{protected_address}"\nprotected = true\n'
        f'\n[hosts.alias]\naddress = "{alias}"\n',
    )
    message = _refused(path)
    assert "host 'alias': field 'address'" in message and "'production'" in message


def test_the_production_address_must_be_marked_protected(tmp_path):
    """167.99.0.168 is production's (README), whatever the inventory calls its host."""
    text = DEFAULT_INVENTORY.read_text().replace(PRODUCTION_BLOCK, "")
    text = text.replace('address = "staging.justapply.net"', 'address = "167.99.0.168"')
    path = tmp_path / "inv.toml"
    path.write_text(text)
    message = _refused(path)
    assert "host 'staging': field 'address'" in message and "production" in message


@pytest.mark.parametrize(
    "value",
    ["db@evil.example", "127.0.0.1/other", "db host", "db:5432", "-db", "db..internal", "db?x"],
)
def test_postgres_host_must_be_a_host_name_or_ip(tmp_path, value):
    path = _mutate(
        tmp_path, "postgres_port = 5432", f"postgres_port = 5432\npostgres_host = {value!r}"
    )
    message = _refused(path)
    assert "host 'staging': field 'postgres_host'" in message


@pytest.mark.parametrize("value", ["127.0.0.1", "::1", "localhost", "db-1.internal", "10.0.0.5"])
def test_postgres_host_accepts_names_and_addresses(tmp_path, value):
    path = _mutate(
        tmp_path, "postgres_port = 5432", f"postgres_port = 5432\npostgres_host = {value!r}"
    )
    assert load_inventory(path).hosts["staging"].postgres_host == value


def test_a_slot_named_twice_is_selected_once():
    inventory = load_inventory(DEFAULT_INVENTORY)
    assert [s.id for s in inventory.select_slots("2,2,3,2")] == [2, 3]


def _with_listen_address(tmp_path: Path, value: str) -> Path:
    return _mutate(
        tmp_path,
        '[hosts.staging]\naddress = "staging.justapply.net"\n',
        f'[hosts.staging]\naddress = "staging.justapply.net"\nlisten_address = {value}\n',
    )


def test_listen_address_defaults_to_all_addresses():
    assert load_inventory(DEFAULT_INVENTORY).hosts["staging"].listen_address == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [('"127.0.0.1"', "127.0.0.1"), ('"::1"', "::1"), ('"0:0::1"', "::1"), ('""', "")],
)
def test_listen_address_is_an_ip_address(tmp_path, value, expected):
    inventory = load_inventory(_with_listen_address(tmp_path, value))
    assert inventory.hosts["staging"].listen_address == expected


@pytest.mark.parametrize(
    "value",
    ['"localhost"', '"127.0.0.1:80"', '"127.0.0.1; include /etc/passwd"', '"fe80::1%eth0"', "1"],
)
def test_bad_listen_address_names_host_and_field(tmp_path, value):
    path = _with_listen_address(tmp_path, value)
    with pytest.raises(BadInput) as err:
        load_inventory(path)
    assert f"{path}: host 'staging': field 'listen_address'" in str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "table", "key", "near"),
    [
        ("verify_timeout = 120", "verify_timout = 90", "[app]", "verify_timout", "verify_timeout"),
        ('user = "root"', 'usr = "root"', "[hosts.staging]", "usr", "user"),
        ("protected = true", "protected = true\nprotectd = true", "[hosts.production]",
         "protectd", "protected"),
        ("role = \"qa\"", "rol = \"qa\"", "[[slots]] #1 (id 1)", "rol", "role"),
    ],
)  # fmt: skip
def test_provision_all_with_an_unknown_inventory_key_exits_2_touching_nothing(
    tmp_path, old, new, table, key, near
):
    """The inventory's host and registry are listeners here: `invoke provision-all` must
    refuse the file (one line, exit 2) without so much as connecting to either."""
    with (
        socket.create_server(("127.0.0.1", 0)) as ssh,
        socket.create_server(("127.0.0.1", 0)) as database,
    ):
        assert old in DEFAULT_INVENTORY.read_text()  # else the test would test nothing
        text = DEFAULT_INVENTORY.read_text().replace(old, new, 1)
        text = text.replace('address = "staging.justapply.net"', 'address = "127.0.0.1"')
        text = text.replace("port = 22\n", f"port = {ssh.getsockname()[1]}\n")
        path = tmp_path / "staging.toml"
        path.write_text(text)
        dsn = f"postgresql://ops@127.0.0.1:{database.getsockname()[1]}/registry"
        result = run_invoke(
            "provision-all", env={"STAGING_INVENTORY": str(path), "STAGING_REGISTRY_DSN": dsn}
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.strip().splitlines() == [
            f"error: {path}: {table}: unknown key '{key}' (did you mean '{near}'?)"
        ], result.stderr
        assert result.stdout == ""
        for listener in (ssh, database):
            listener.setblocking(False)
            with pytest.raises(BlockingIOError):  # nobody connected: nothing was touched
                listener.accept()


def test_the_api_server_refuses_to_start_on_an_inventory_with_an_unknown_key(tmp_path):
    """Its workers would otherwise log the error and serve without the inventory (GitHub
    webhooks freeing nothing): `invoke api.serve` exits 2 with the one line, listening on
    nothing, before it even needs its registry or secret."""
    path = _mutate(tmp_path, "auto_release_stop = false", "auto_release_stp = true")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    result = run_invoke(
        "api.serve", "--port", str(port), env={"STAGING_INVENTORY": str(path)}, timeout=60
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: [app]: unknown key 'auto_release_stp' (did you mean 'auto_release_stop'?)"
    ], result.stderr
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens
