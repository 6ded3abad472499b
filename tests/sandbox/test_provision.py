"""provision-all against the real sandbox droplet: converges, is idempotent, honest in --check,
restores nginx when it is invalid, and survives a crash between write and handler."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
import requests

from devtools import sandbox as sandbox_mod
from staging_ops.health import slot_get
from staging_ops.inventory import load_inventory
from staging_ops.provision.databases import password_from_env_file
from tests.conftest import (
    inventory_as,
    inventory_variant,
    login_as_slot_role,
    sandbox_ports,
)
from tests.sandbox.provisioning import provision, provision_json
from tests.sandbox.slots import slot_for

# The slot a stand-in release is started on (the other slots it reads are in its row).
SLOT = slot_for(__name__)


def nginx_workers(sandbox) -> set[str]:
    """The nginx master's worker PIDs: a reload replaces them (the master PID stays)."""
    master = sandbox.pids["h1:nginx"]
    return set(Path(f"/proc/{master}/task/{master}/children").read_text().split())


def managed_files(sandbox) -> dict[str, float]:
    root = sandbox.hosts[0].root
    found = {}
    for pattern in (
        "etc/nginx/sites-available/*.conf",
        "etc/nginx/sites-enabled/*.conf",
        "etc/systemd/system/job-search-*",
        "etc/systemd/system/multi-user.target.wants/*",
        "srv/staging/staging-*/shared/env",
    ):
        for path in root.glob(pattern):
            found[str(path)] = path.lstat().st_mtime_ns
    return found


def test_first_run_converges_everything(sandbox, provisioned):
    out = provisioned.stdout
    assert "h1:" in out and "changed=" in out and "failed=0" in out
    root = sandbox.hosts[0].root
    for n in range(1, 11):
        vhost = root / f"etc/nginx/sites-available/staging-{n}.justapply.net.conf"
        assert vhost.is_file()
        enabled = root / f"etc/nginx/sites-enabled/staging-{n}.justapply.net.conf"
        assert os.readlink(enabled) == str(vhost)
        env = root / f"srv/staging/staging-{n}/shared/env"
        assert env.stat().st_mode & 0o777 == 0o600
        assert env.owner() == sandbox_mod.SERVICE_USER
        assert (root / f"srv/staging/staging-{n}/releases").is_dir()
        wants = (
            root / f"etc/systemd/system/multi-user.target.wants/job-search-ui@staging-{n}.service"
        )
        assert wants.is_symlink()
    assert "waiting for first deploy" in out
    # Nothing leaks the generated passwords.
    for n in range(1, 11):
        env_text = (root / f"srv/staging/staging-{n}/shared/env").read_text()
        password = password_from_env_file(env_text)
        assert password and password not in out


def test_second_run_changes_nothing_in_one_command(sandbox, provisioned):
    before = managed_files(sandbox)
    workers = nginx_workers(sandbox)
    report = provision_json(sandbox)
    assert report["changed"] == 0, report
    assert nginx_workers(sandbox) == workers  # not reloaded
    host = report["hosts"][0]
    assert host["commands"] == 1 and host["uploads"] == 0
    assert managed_files(sandbox) == before


def test_slot_roles_cannot_open_each_others_databases(sandbox, provisioned):
    root = sandbox.hosts[0].root
    pw3 = password_from_env_file((root / "srv/staging/staging-3/shared/env").read_text())
    assert login_as_slot_role(sandbox, "job_search_staging_3", pw3) == "job_search_staging_3"
    with pytest.raises(psycopg2.OperationalError, match="permission denied"):
        login_as_slot_role(sandbox, "job_search_staging_3", pw3, "job_search_staging_4")


def test_check_and_diff_report_drift_without_touching_it(sandbox, provisioned):
    root = sandbox.hosts[0].root
    vhost = root / "etc/nginx/sites-available/staging-5.justapply.net.conf"
    env = root / "srv/staging/staging-5/shared/env"
    original_vhost, original_env = vhost.read_text(), env.read_text()
    vhost.write_text(original_vhost.replace("client_max_body_size 25m", "client_max_body_size 1m"))
    env.write_text(original_env.replace("DATABASE_NAME=", "DATABASE_NAME=x"))
    env.chmod(0o644)
    drifted_vhost, drifted_env = vhost.read_text(), env.read_text()
    result = provision(sandbox, "--check", "--diff")
    assert result.returncode == 0, result.stderr
    assert "would change" in result.stdout
    assert "-    client_max_body_size 1m;" in result.stdout
    assert "+    client_max_body_size 25m;" in result.stdout
    password = password_from_env_file(original_env)
    assert password not in result.stdout and "********" in result.stdout
    assert vhost.read_text() == drifted_vhost and env.read_text() == drifted_env
    assert env.stat().st_mode & 0o777 == 0o644
    fixed = provision_json(sandbox)
    targets = {c["target"] for c in fixed["hosts"][0]["changes"]}
    assert str(vhost) in targets and str(env) in targets
    assert vhost.read_text() == original_vhost and env.read_text() == original_env
    assert env.stat().st_mode & 0o777 == 0o600
    assert provision_json(sandbox)["changed"] == 0


def test_slots_flag_limits_the_run(sandbox, provisioned):
    root = sandbox.hosts[0].root
    vhost6 = root / "etc/nginx/sites-available/staging-6.justapply.net.conf"
    vhost7 = root / "etc/nginx/sites-available/staging-7.justapply.net.conf"
    good6, good7 = vhost6.read_text(), vhost7.read_text()
    vhost6.write_text(good6 + "# drift\n")
    vhost7.write_text(good7 + "# drift\n")
    report = provision_json(sandbox, "--slots", "6")
    targets = {c["target"] for c in report["hosts"][0]["changes"]}
    assert str(vhost6) in targets and str(vhost7) not in targets
    assert vhost6.read_text() == good6 and vhost7.read_text().endswith("# drift\n")
    vhost7.write_text(good7)
    bad = provision(sandbox, "--slots", "6,12")
    assert bad.returncode == 2 and "valid slots are 1-10" in bad.stderr


def test_invalid_nginx_is_restored_and_nginx_keeps_serving(sandbox, provisioned, tmp_path):
    root = sandbox.hosts[0].root
    before = {p: p.read_text() for p in (root / "etc/nginx/sites-available").glob("*.conf")}
    broken = inventory_variant(
        sandbox,
        tmp_path,
        (f'tls_certificate = "{sandbox.ca_path}"', 'tls_certificate = "/nonexistent/cert.pem"'),
    )
    result = provision(sandbox, env={"STAGING_INVENTORY": str(broken)})
    assert result.returncode == 1
    assert "nginx -t failed, previous files restored" in result.stdout
    assert "/nonexistent/cert.pem" in result.stdout
    after = {p: p.read_text() for p in (root / "etc/nginx/sites-available").glob("*.conf")}
    assert after == before
    # nginx still answers with the old, valid configuration.
    inventory = load_inventory(sandbox.inventory_path)
    response = slot_get(inventory.hosts["h1"], inventory.slots[1], "/api/version")
    assert response.status_code == 502  # routed to slot 1, whose app is not deployed
    assert provision_json(sandbox)["changed"] == 0


def test_handler_interrupted_by_kill_runs_on_the_next_provision(sandbox, provisioned):
    root = sandbox.hosts[0].root
    vhost = root / "etc/nginx/sites-available/staging-8.justapply.net.conf"
    good = vhost.read_text()
    vhost.write_text(good.replace("proxy_read_timeout 120s", "proxy_read_timeout 5s"))
    # nginx takes the drifted file, so the running config differs from the desired one.
    subprocess.run([*sandbox.hosts[0].nginx_args(), "-s", "reload"], check=True)
    killed = provision(sandbox, env={"STAGING_OPS_CRASH_AT": "provision:after-upload"})
    assert killed.returncode != 0
    assert vhost.read_text() == good  # written ...
    marker = root / "srv/staging/.staging-ops-pending.json"
    assert json.loads(marker.read_text())["nginx"] is True  # ... but not yet reloaded
    workers = nginx_workers(sandbox)
    rerun = provision_json(sandbox)
    actions = {(c["target"], c["action"]) for c in rerun["hosts"][0]["changes"]}
    assert ("nginx", "reload") in actions
    deadline = time.monotonic() + 5
    while nginx_workers(sandbox) & workers and time.monotonic() < deadline:
        time.sleep(0.05)  # the old workers finish their requests, then exit
    assert not nginx_workers(sandbox) & workers  # really reloaded
    assert not marker.exists()
    assert provision_json(sandbox)["changed"] == 0


def test_deployed_slot_services_are_started_and_served(sandbox, provisioned):
    """A slot with a release gets its units started by provision (a stand-in release here;
    the deploy tests cover real ones)."""
    slot_dir = sandbox.hosts[0].root / f"srv/staging/staging-{SLOT}"
    units = [
        f"job-search-ui@staging-{SLOT}.service",
        f"job-search-airflow-webserver@staging-{SLOT}.service",
        f"job-search-airflow-scheduler@staging-{SLOT}.service",
    ]
    systemctl = str(Path(sandbox.hosts[0].dir) / "bin/systemctl")
    # Released and stopped before the module's first test (tests/sandbox/slots.py: shared), as
    # provision finds a slot nobody deployed to.
    assert not (slot_dir / "current").exists()
    release = slot_dir / "releases/manual"
    release.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "--git-dir", str(sandbox.repo_path), "archive", "main"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(release)], input=archive, check=True)
    (release / ".venv/bin").mkdir(parents=True)
    (release / ".venv/bin/python").symlink_to("/usr/bin/python3")
    (release / ".release-env").write_text("DEPLOYED_COMMIT=feedface\nDEPLOYED_BRANCH=manual\n")
    (slot_dir / "current").symlink_to("releases/manual")
    try:
        report = provision_json(sandbox)
        started = {c["target"] for c in report["hosts"][0]["changes"] if c["action"] == "start"}
        assert started == set(units)
        inventory = load_inventory(sandbox.inventory_path)
        deadline = time.monotonic() + 10
        while True:
            response = slot_get(inventory.hosts["h1"], inventory.slots[SLOT], "/api/version")
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        expected = {"commit": "feedface", "branch": "manual", "slot": f"staging-{SLOT}"}
        assert response.json() == expected
        assert provision_json(sandbox)["changed"] == 0
    finally:
        subprocess.run([systemctl, "stop", *units], capture_output=True, check=False)
        (slot_dir / "current").unlink()
        shutil.rmtree(release)


def test_unreachable_host_fails_alone(sandbox, provisioned, tmp_path):
    text = sandbox.inventory_path.read_text()
    text = text.replace(
        "[hosts.production]",
        '[hosts.dead]\naddress = "127.0.0.1"\nport = 1\nconnect_timeout = 2\n\n[hosts.production]',
    )
    head, _, tail = text.partition('identifier = "staging-10"')
    tail = tail.replace('host = "h1"', 'host = "dead"', 1)
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(head + 'identifier = "staging-10"' + tail)
    start = time.monotonic()
    result = provision(sandbox, env={"STAGING_INVENTORY": str(inventory)})
    assert time.monotonic() - start < 10
    assert result.returncode == 1
    assert "cannot reach dead (127.0.0.1:1): Connection refused" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "h1           ok=" in result.stdout and "failed=0" in result.stdout


def test_protected_host_is_refused_before_any_connection(sandbox, tmp_path):
    text = sandbox.inventory_path.read_text()
    head, _, tail = text.partition('identifier = "staging-3"')
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        head + 'identifier = "staging-3"' + tail.replace('host = "h1"', 'host = "production"', 1)
    )
    result = provision(sandbox, env={"STAGING_INVENTORY": str(inventory)})
    assert result.returncode == 2
    assert "slot 3: field 'host'" in result.stderr and "protected" in result.stderr


def test_several_hosts_in_one_run():
    directory = Path(tempfile.mkdtemp(prefix="staging-ops-multi-"))
    directory.chmod(0o755)
    ports = sandbox_ports(200)
    try:
        box = sandbox_mod.up(directory, hosts=3, slots=9, ports=ports)
        first = provision_json(box)
        assert not first["failed"], first
        assert sorted(h["host"] for h in first["hosts"]) == ["h1", "h2", "h3"]
        for index, host in enumerate(box.hosts):
            for n in range(index * 3 + 1, index * 3 + 4):
                assert (host.root / f"srv/staging/staging-{n}/shared/env").is_file()
        second = provision_json(box)
        assert second["changed"] == 0
        assert all(h["commands"] == 1 for h in second["hosts"])
        inventory = load_inventory(box.inventory_path)
        with pytest.raises(requests.ConnectionError):
            # Every host's default server refuses unknown names.
            requests.get(
                f"http://127.0.0.1:{box.hosts[2].http_port}/",
                headers={"Host": "unknown.example"},
                timeout=3,
            )
        assert slot_get(inventory.hosts["h3"], inventory.slots[8], "/").status_code == 502
    finally:
        sandbox_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)


def test_unreachable_postgres_fails_the_database_step_in_one_line(sandbox, provisioned, tmp_path):
    inventory = inventory_variant(
        sandbox, tmp_path, (f"postgres_port = {sandbox.pg_port}", "postgres_port = 1")
    )
    result = provision(sandbox, env={"STAGING_INVENTORY": str(inventory)})
    assert result.returncode == 1
    assert "failed   databases" in result.stdout
    assert "cannot reach h1 postgres (127.0.0.1:1 via ssh)" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    # The other steps converged to that inventory (env files name port 1); converge back.
    restored = provision_json(sandbox)
    assert {c["step"] for c in restored["hosts"][0]["changes"]} <= {"env files", "services"}
    assert provision_json(sandbox)["changed"] == 0


def test_a_user_without_sudo_gets_one_clear_line(sandbox, provisioned, os_user, tmp_path):
    user = os_user("stagingops-nosudo", passwordless_sudo=False)
    result = provision(
        sandbox, env={"STAGING_INVENTORY": str(inventory_as(sandbox, user, tmp_path))}
    )
    assert result.returncode == 1
    assert f"h1: user {user} needs root or passwordless sudo: sudo:" in result.stdout
    assert "failed   facts" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_sudoer_converges_the_host_like_root(sandbox, provisioned, os_user, tmp_path):
    user = os_user("stagingops-sudoer", passwordless_sudo=True)
    env = {"STAGING_INVENTORY": str(inventory_as(sandbox, user, tmp_path))}
    root = sandbox.hosts[0].root
    vhost = root / "etc/nginx/sites-available/staging-3.justapply.net.conf"
    good = vhost.read_text()
    vhost.write_text(good + "# drift\n")
    report = provision_json(sandbox, env=env)
    assert not report["failed"], report
    assert str(vhost) in {c["target"] for c in report["hosts"][0]["changes"]}
    assert vhost.read_text() == good and vhost.owner() == "root"
    again = provision_json(sandbox, env=env)
    assert again["changed"] == 0 and again["hosts"][0]["commands"] == 1


def test_a_failed_write_is_one_line_and_leaves_no_temp_file(sandbox, provisioned):
    sites = sandbox.hosts[0].root / "etc/nginx/sites-available"
    vhost = sites / "staging-5.justapply.net.conf"
    good = vhost.read_text()
    vhost.unlink()
    vhost.mkdir()  # the rename over it fails, as a full disk or a read-only path would
    try:
        result = provision(sandbox)
        assert result.returncode == 1
        assert f"h1: write {vhost}:" in result.stdout
        assert "Traceback" not in result.stdout + result.stderr
        assert not [p for p in sites.iterdir() if ".staging-ops-" in p.name]
    finally:
        vhost.rmdir()
        vhost.write_text(good)
    # The handlers the failed run left pending (its marker) run now, then all is quiet.
    rerun = provision_json(sandbox)
    assert {c["step"] for c in rerun["hosts"][0]["changes"]} <= {"services"}
    assert provision_json(sandbox)["changed"] == 0


def _fill(directory: Path) -> None:
    """Write zeros into `directory` until its file system is full."""
    try:
        with (directory / ".filler").open("wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system needs root")
def test_a_full_disk_is_one_line_and_every_file_stays_whole(sandbox, provisioned):
    """sites-available on a file system of its own (a 128 KiB tmpfs), filled up: the write
    fails with words an operator understands, the file keeps its old content whole, nginx
    keeps serving, and once there is room again the next run converges."""
    sites = sandbox.hosts[0].root / "etc/nginx/sites-available"
    vhost = sites / "staging-5.justapply.net.conf"
    saved = {path.name: path.read_bytes() for path in sites.iterdir()}
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=128k,mode=0755", "staging-ops-full", str(sites)],
        check=True,
    )
    try:
        for name, data in saved.items():
            (sites / name).write_bytes(data)
        drifted = saved[vhost.name] + b"# drift\n"
        vhost.write_bytes(drifted)
        _fill(sites)
        result = provision(sandbox)
        assert result.returncode == 1
        errors = [line for line in result.stdout.splitlines() if "error:" in line]
        assert len(errors) == 1, result.stdout
        assert f"h1: write {vhost}: no space left on the device" in errors[0]
        assert "Traceback" not in result.stdout + result.stderr
        assert vhost.read_bytes() == drifted  # the old file, whole; not a truncated new one
        assert not [p for p in sites.iterdir() if ".staging-ops-" in p.name]
        inventory = load_inventory(sandbox.inventory_path)
        assert slot_get(inventory.hosts["h1"], inventory.slots[5], "/").status_code in (200, 502)
        (sites / ".filler").unlink()
        rerun = provision_json(sandbox)
        assert not rerun["failed"], rerun
        assert vhost.read_bytes() == saved[vhost.name]
    finally:
        subprocess.run(["umount", str(sites)], check=True)
    assert provision_json(sandbox)["changed"] == 0
