"""Shared fixtures: one real sandbox droplet per test session (sshd, PostgreSQL, nginx,
systemctl stand-in, sample-app repository), on ports of its own so a running demo sandbox
is never disturbed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from devtools import sandbox as sandbox_mod

ROOT = Path(__file__).resolve().parent.parent
# The project's own inventory (the real droplet and its slots).
DEFAULT_INVENTORY = ROOT / "inventory" / "staging.toml"
INVOKE = str(Path(sys.executable).parent / "invoke")
# Distinct from the demo sandbox (22200, slot ports 5001..) so both can run at once; each
# pytest-xdist worker (scripts/test.sh runs two) 1000 further on, slot ports included.
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
TEST_PORT_BASE = int(os.environ.get("STAGING_TEST_PORT_BASE", "23200")) + 1000 * WORKER


def sandbox_ports(extra: int = 0) -> sandbox_mod.Ports:
    """Ports for a test sandbox: `extra` (0, 100, 200, ...) keeps several apart, and
    STAGING_TEST_PORT_BASE keeps concurrent test runs apart (slot ports included)."""
    return sandbox_mod.Ports(
        base=TEST_PORT_BASE + extra, slot_offset=TEST_PORT_BASE - 22200 + extra
    )


TEST_PORTS = sandbox_ports()

# Each test folder says what its tests need; its tests carry that marker (`-m unit`).
FOLDERS = ("unit", "sandbox", "droplet")
# The real Flask + Airflow app (tests/sandbox/realapp, tests/droplet/test_realapp_droplet.py).
REALAPP = "realapp"


def markers_for(path: Path) -> list[str]:
    """The markers of a test module at `path`: its folder's, and `realapp` for the real app's
    (none for a module outside tests/, which a run may also collect)."""
    tests = Path(__file__).parent
    if not path.is_relative_to(tests):
        return []
    parts = path.relative_to(tests).parts
    found = [parts[0]] if len(parts) > 1 and parts[0] in FOLDERS else []
    if any(REALAPP in part for part in parts):
        found.append(REALAPP)
    return found


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = markers_for(item.path)
        for name in names:
            item.add_marker(name)
        if "unit" in names and "sandbox" in item.fixturenames:
            # tests/unit runs without a host: a test that needs one belongs in tests/sandbox.
            raise pytest.UsageError(f"{item.nodeid} is in tests/unit but uses the sandbox")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[sandbox_mod.Sandbox]:
    # Not under pytest's 0700 tmp dirs: the postgres OS user must traverse the path.
    directory = Path(tempfile.mkdtemp(prefix="staging-ops-sbx-"))
    directory.chmod(0o755)
    box = sandbox_mod.up(directory, hosts=1, ports=TEST_PORTS)
    try:
        yield box
    finally:
        sandbox_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_admin_dsn(sandbox: sandbox_mod.Sandbox) -> str:
    return sandbox.admin_dsn


@pytest.fixture(scope="session")
def test_inventory_path(sandbox: sandbox_mod.Sandbox) -> Path:
    return sandbox.inventory_path


def admin_execute(dsn: str, statement: sql.Composable | str) -> None:
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def execute(dsn: str, statement: str, params: tuple = ()) -> list[tuple]:
    """One statement in its own transaction; its rows, if it returns any."""
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def login_as_slot_role(sandbox, role: str, password: str, dbname: str | None = None) -> str:
    """current_user after logging in as a slot's role over TCP (the sandbox's pg_hba asks
    for scram-sha-256 there), into its own database unless `dbname` says otherwise."""
    conn = psycopg2.connect(
        host="127.0.0.1",
        port=sandbox.pg_port,
        user=role,
        password=password,
        dbname=dbname or role,
        connect_timeout=5,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            return cur.fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def registry_dsn(postgres_admin_dsn: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"reg_{uuid.uuid4().hex[:12]}"
    admin_execute(postgres_admin_dsn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield postgres_admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    admin_execute(
        postgres_admin_dsn,
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
    )


def run_invoke(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `invoke ARGS` as an operator would, from the project root."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [INVOKE, *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def provisioned(sandbox: sandbox_mod.Sandbox) -> subprocess.CompletedProcess[str]:
    """The session sandbox after one `invoke provision-all` (the registry migrated too)."""
    first = run_invoke("provision-all", env=sandbox.env())
    assert first.returncode == 0, first.stdout + first.stderr
    return first


@pytest.fixture
def os_user():
    """Creates OS users for a test (key login: no password, not locked) and removes them."""
    created: list[str] = []

    def make(name: str, passwordless_sudo: bool) -> str:
        subprocess.run(["userdel", name], capture_output=True, check=False)
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True)
        subprocess.run(["usermod", "-p", "*", name], check=True)
        created.append(name)
        if passwordless_sudo:
            rule = Path(f"/etc/sudoers.d/{name}")
            rule.write_text(f"{name} ALL=(ALL) NOPASSWD:ALL\n")
            rule.chmod(0o440)
        return name

    yield make
    for name in created:
        Path(f"/etc/sudoers.d/{name}").unlink(missing_ok=True)
        subprocess.run(["userdel", name], capture_output=True, check=False)


def inventory_variant(sandbox, tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    """The sandbox's inventory with each (old, new) replaced; fails if an `old` is missing, so a
    test can never run against the unchanged inventory by mistake."""
    text = sandbox.inventory_path.read_text()
    for old, new in replacements:
        assert old in text, f"{old!r} is not in the sandbox inventory"
        text = text.replace(old, new)
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    return path


def inventory_as(sandbox, user: str, tmp_path: Path) -> Path:
    """The sandbox's inventory, logging in to its hosts as `user` instead of root."""
    return inventory_variant(sandbox, tmp_path, ('user = "root"', f'user = "{user}"'))
