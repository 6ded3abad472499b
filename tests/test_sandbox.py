"""The sandbox droplet is real: sshd, PostgreSQL, nginx, the systemctl stand-in, git."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
import requests

from staging_ops import sandbox as sandbox_mod
from staging_ops.inventory import load_inventory
from staging_ops.remote import Unreachable, connect
from tests.conftest import TEST_PORT_BASE, run_invoke, sandbox_ports


def test_inventory_and_env_point_at_the_sandbox(sandbox):
    inventory = load_inventory(sandbox.inventory_path)
    assert sorted(inventory.slots) == list(range(1, 11))
    assert inventory.slots[4].ui_port == 5004 + sandbox.slot_port_offset
    assert inventory.hosts["production"].protected
    env = subprocess.run(
        ["bash", "-c", f"source {sandbox.env_path} && env"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"STAGING_INVENTORY={sandbox.inventory_path}" in env
    assert f"STAGING_SANDBOX_REPO={sandbox.repo_path}" in env
    assert f"STAGING_REGISTRY_DSN={sandbox.registry_dsn}" in env


def test_ssh_session_has_the_systemctl_stand_in_on_path(sandbox):
    inventory = load_inventory(sandbox.inventory_path)
    remote = connect(inventory.hosts["h1"])
    try:
        _, out, _ = remote.run("command -v systemctl; echo $HOME")
        systemctl, home = out.split()
        assert systemctl == f"{sandbox.hosts[0].dir}/bin/systemctl"
        assert home == f"{sandbox.hosts[0].dir}/home"
        assert remote.commands == 1
    finally:
        remote.close()


def test_real_unit_file_runs_under_the_stand_in_and_outlives_the_session(sandbox):
    host = sandbox.hosts[0]
    inventory = load_inventory(sandbox.inventory_path)
    port = TEST_PORT_BASE + 790
    unit = host.root / "etc/systemd/system/probe@.service"
    unit.write_text(f"""[Unit]
Description=probe %i
[Service]
WorkingDirectory={host.root}/srv
ExecStart=/usr/bin/python3 -m http.server --bind 127.0.0.1 {port}
Restart=on-failure
[Install]
WantedBy=multi-user.target
""")
    remote = connect(inventory.hosts["h1"])
    try:
        remote.run("systemctl daemon-reload && systemctl start probe@one.service")
    finally:
        remote.close()
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                assert requests.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert "probe@one" in sandbox_mod.status(sandbox.dir)["hosts"][0]["units"]
        remote = connect(inventory.hosts["h1"])
        _code, out, _ = remote.run("systemctl is-active probe@one.service", check=False)
        assert out.strip() == "active"
        remote.run("systemctl stop probe@one.service")
        remote.close()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
    finally:
        unit.unlink()


def test_postgres_is_real_and_slot_roles_need_a_password(sandbox):
    conn = psycopg2.connect(sandbox.registry_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_database(), version()")
            name, version = cur.fetchone()
        assert name == "staging_registry" and version.startswith("PostgreSQL ")
    finally:
        conn.close()
    with pytest.raises(psycopg2.OperationalError, match="password"):
        psycopg2.connect(
            host="127.0.0.1",
            port=sandbox.pg_port,
            user="nobody_here",
            dbname="postgres",
            connect_timeout=3,
        )


def test_bare_repository_has_the_sample_branches(sandbox):
    out = subprocess.run(
        ["git", "--git-dir", str(sandbox.repo_path), "branch", "--format", "%(refname:short)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert set(out.split()) >= {
        "main",
        "feat-x",
        "broken-start",
        "broken-version",
        "broken-migration",
        "new-deps",
    }


def test_nginx_runs_with_the_wildcard_certificate(sandbox):
    text = subprocess.run(
        ["openssl", "x509", "-in", str(sandbox.ca_path), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:*.justapply.net" in text
    host = sandbox.hosts[0]
    result = subprocess.run([*host.nginx_args(), "-t"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert sandbox_mod.status(sandbox.dir)["processes"]["h1:nginx"] is True


def test_sandbox_listens_only_on_loopback(sandbox):
    ports = {sandbox.pg_port} | {p for h in sandbox.hosts for p in (h.ssh_port,)}
    listening = subprocess.run(
        ["ss", "-Hltn"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for line in listening:
        local = line.split()[3]
        address, _, port = local.rpartition(":")
        if int(port) in ports:
            assert address == "127.0.0.1", line


def test_protected_host_is_never_connected_to(sandbox):
    inventory = load_inventory(sandbox.inventory_path)
    with pytest.raises(Exception, match="protected"):
        connect(inventory.hosts["production"])


def test_unreachable_host_fails_fast_with_a_clear_line(sandbox):
    import dataclasses

    host = dataclasses.replace(
        load_inventory(sandbox.inventory_path).hosts["h1"], port=1, connect_timeout=2
    )
    start = time.monotonic()
    with pytest.raises(Unreachable, match=r"cannot reach h1 \(127\.0\.0\.1:1\): "):
        connect(host)
    assert time.monotonic() - start < 3


def test_up_down_and_restart_after_a_crash(tmp_path):
    directory = Path(tempfile.mkdtemp(prefix="staging-ops-sbx2-"))
    directory.chmod(0o755)
    ports = sandbox_ports(100)
    try:
        box = sandbox_mod.up(directory, hosts=2, slots=4, ports=ports)
        assert set(box.pids) == {"postgres", "h1:nginx", "h1:sshd", "h2:nginx", "h2:sshd"}
        inventory = load_inventory(box.inventory_path)
        assert {s.host for s in inventory.slots.values()} == {"h1", "h2"}
        marker = box.path / "hosts" / "h1" / "home" / "stale-marker"
        marker.write_text("x")
        # A crash: sshd is killed, state is left behind; `up` cleans it and starts afresh.
        os.kill(box.pids["h1:sshd"], signal.SIGKILL)
        result = run_invoke("sandbox.status", "--dir", str(directory))
        assert result.returncode == 1 and "h1:sshd" in result.stdout and "stopped" in result.stdout
        box = sandbox_mod.up(directory, hosts=2, slots=4, ports=ports)
        assert not marker.exists()
        assert all(sandbox_mod.status(directory)["processes"].values())
        pids = dict(box.pids)
        result = run_invoke("sandbox.down", "--dir", str(directory))
        assert result.returncode == 0, result.stderr
        assert "stopped 5" in result.stdout
        for pid in pids.values():
            assert (
                not Path(f"/proc/{pid}").exists()
                or Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"
            )
        assert sandbox_mod.status(directory)["up"] is False
    finally:
        sandbox_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)
