"""provision-all drift and failures, against the real sandbox droplet: an nginx failure that is
not this run's is reported as it is; database errors are one line; --slots 2,2 counts once;
the database step waits for a PostgreSQL install; CRLF drift is seen; directory groups
converge."""

from __future__ import annotations

import grp
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from staging_ops.provision import run as provision_mod
from staging_ops.provision.databases import password_from_env_file
from tests.conftest import admin_execute, inventory_variant, login_as_slot_role
from tests.sandbox.provisioning import provision, provision_json

MARKER = "srv/staging/.staging-ops-pending.json"


def _changes(report: dict) -> list[dict]:
    return report["hosts"][0]["changes"]


def _drop_slot_database(sandbox, n: int) -> None:
    """Slot n's database and role gone, as on a droplet where they were never created."""
    name = sql.Identifier(f"job_search_staging_{n}")
    admin_execute(
        sandbox.admin_dsn, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name)
    )
    admin_execute(sandbox.admin_dsn, sql.SQL("DROP ROLE IF EXISTS {}").format(name))


def _slot_login(sandbox, n: int) -> str:
    env = sandbox.hosts[0].root / f"srv/staging/staging-{n}/shared/env"
    password = password_from_env_file(env.read_text())
    return login_as_slot_role(sandbox, f"job_search_staging_{n}", password)


# --- nginx -t fails and nothing of this run's is there to restore ---------------------------------


def test_a_crashed_runs_bad_nginx_fails_every_run_until_fixed(sandbox, provisioned, tmp_path):
    """Run 1 uploads vhosts naming a missing certificate and is killed before its handlers;
    runs 2 and 3 find the files already as desired: each fails honestly (no restore claimed,
    nginx's error shown) and keeps the marker, until a good inventory converges."""
    marker = sandbox.hosts[0].root / MARKER
    broken = inventory_variant(
        sandbox,
        tmp_path,
        (f'tls_certificate = "{sandbox.ca_path}"', 'tls_certificate = "/nonexistent/cert.pem"'),
    )
    env = {"STAGING_INVENTORY": str(broken)}
    try:
        killed = provision(sandbox, env={**env, "STAGING_OPS_CRASH_AT": "provision:after-upload"})
        assert killed.returncode != 0
        assert json.loads(marker.read_text())["nginx"] is True
        for run in (2, 3):
            result = provision(sandbox, env=env)
            out = result.stdout
            assert result.returncode == 1, f"run {run}: {out}"
            assert "restored" not in out, f"run {run}: {out}"
            errors = [line for line in out.splitlines() if "error: " in line]
            assert len(errors) == 1, out
            assert "h1: nginx -t fails with the files as they are" in errors[0]
            assert "[emerg]" in errors[0] and "/nonexistent/cert.pem" in errors[0]
            assert "Traceback" not in out + result.stderr
            assert json.loads(marker.read_text())["nginx"] is True, f"run {run}"
    finally:
        fixed = provision_json(sandbox)
    assert not fixed["failed"], fixed
    assert ("nginx", "reload") in {(c["target"], c["action"]) for c in _changes(fixed)}
    assert not marker.exists()
    assert provision_json(sandbox)["changed"] == 0


def test_systemd_work_done_beside_a_failing_nginx_is_not_left_pending(
    sandbox, provisioned, tmp_path
):
    """A run whose unit files change (daemon-reload succeeds) while nginx -t fails on files
    it did not write keeps only the nginx test pending."""
    marker = sandbox.hosts[0].root / MARKER
    cert = (f'tls_certificate = "{sandbox.ca_path}"', 'tls_certificate = "/nonexistent/cert.pem"')
    broken = inventory_variant(sandbox, tmp_path, cert)
    (tmp_path / "units").mkdir()
    units = inventory_variant(
        sandbox, tmp_path / "units", cert, ("app.py ui", "app.py ui --reviewed")
    )
    try:
        crash = {"STAGING_OPS_CRASH_AT": "provision:after-upload"}
        killed = provision(sandbox, env={"STAGING_INVENTORY": str(broken), **crash})
        assert killed.returncode != 0
        result = provision(sandbox, env={"STAGING_INVENTORY": str(units)})
        assert result.returncode == 1, result.stdout
        assert "nginx -t fails with the files as they are" in result.stdout
        assert "restored" not in result.stdout
        # The deployed slots that run the inventory's commands did not take the new ones (the
        # run stopped at nginx): they stay to reload, beside the nginx test.
        pending = json.loads(marker.read_text())
        reloads = re.findall(
            r"(?m)^    (staging-\d+): (?:hand over|restart in place) ", result.stdout
        )
        assert pending == {
            "nginx": True,
            "daemon_reload": False,
            "restart": [],
            **({"reload": reloads} if reloads else {}),
        }
    finally:
        fixed = provision_json(sandbox)
    assert not fixed["failed"], fixed
    assert not marker.exists()
    assert provision_json(sandbox)["changed"] == 0


# --- database errors; --slots 2,2 -----------------------------------------------------------------


def test_a_slot_named_twice_is_provisioned_once(sandbox, provisioned):
    _drop_slot_database(sandbox, 2)
    report = provision_json(sandbox, "--slots", "2,2")
    assert not report["failed"], report
    db = [(c["target"], c["action"]) for c in _changes(report) if c["step"] == "databases"]
    assert db.count(("job_search_staging_2", "create-role")) == 1, db
    assert _slot_login(sandbox, 2) == "job_search_staging_2"
    assert provision_json(sandbox)["changed"] == 0


def test_a_database_error_is_one_line_and_the_run_goes_on(sandbox, provisioned):
    """A session on template1 makes CREATE DATABASE (which copies it) fail, after PostgreSQL's
    own 5 s wait: a real psycopg2 error inside the database step."""
    _drop_slot_database(sandbox, 3)
    busy = psycopg2.connect(sandbox.admin_dsn.rsplit("/", 1)[0] + "/template1")
    try:
        result = provision(sandbox)
    finally:
        busy.close()
    try:
        out = result.stdout + result.stderr
        assert result.returncode == 1, out
        assert "Traceback" not in out
        errors = [line for line in result.stdout.splitlines() if "error: " in line]
        assert errors == [
            '  error: h1: databases: source database "template1" is being accessed by other users'
        ], out
        assert "failed   databases" in result.stdout
        assert "registry migrations" in result.stdout  # the run went on after the failure
        env = (sandbox.hosts[0].root / "srv/staging/staging-3/shared/env").read_text()
        assert password_from_env_file(env) not in out
    finally:
        # The role was made before the failure; the next run makes the database.
        converged = provision_json(sandbox)
    assert not converged["failed"], converged
    assert _slot_login(sandbox, 3) == "job_search_staging_3"
    assert provision_json(sandbox)["changed"] == 0


# --- the database step waits for a PostgreSQL server being installed ------------------------------


@pytest.mark.parametrize(
    ("missing", "waits"),
    [
        ([], False),
        (["nginx", "git", "python3-venv"], False),
        (["postgresql-client-15", "postgresql-common", "postgresql-doc-15"], False),
        (["nginx", "postgresql"], True),
        (["postgresql-15"], True),
        (["postgresql-15-postgis-3"], True),
        (["postgresql-contrib"], True),
    ],
)
def test_only_a_postgresql_server_package_counts_as_installing_the_server(missing, waits):
    """The decision HostRun makes from the missing packages (the real apt-get install runs in
    tests/droplet): a run that installs these brings the PostgreSQL server with it."""
    assert provision_mod.installs_postgres_server(missing) is waits


# --- CRLF drift -----------------------------------------------------------------------------------


def test_a_vhost_converted_to_crlf_is_seen_and_restored(sandbox, provisioned):
    vhost = sandbox.hosts[0].root / "etc/nginx/sites-available/staging-4.justapply.net.conf"
    good = vhost.read_bytes()
    vhost.write_bytes(good.replace(b"\n", b"\r\n"))
    report = provision_json(sandbox)
    assert not report["failed"], report
    files = [c for c in _changes(report) if c["step"] != "services"]
    assert files == [{"step": "nginx files", "target": str(vhost), "action": "update"}]
    assert vhost.read_bytes() == good
    assert provision_json(sandbox)["changed"] == 0


def test_a_crlf_env_file_is_restored_with_its_password(sandbox, provisioned):
    env = sandbox.hosts[0].root / "srv/staging/staging-6/shared/env"
    good = env.read_bytes()
    env.write_bytes(good.replace(b"\n", b"\r\n"))
    report = provision_json(sandbox)
    assert not report["failed"], report
    steps = {c["step"] for c in _changes(report)}
    assert "env files" in steps and "databases" not in steps  # same password, kept
    assert env.read_bytes() == good
    assert _slot_login(sandbox, 6) == "job_search_staging_6"
    assert provision_json(sandbox)["changed"] == 0


# --- directory groups -----------------------------------------------------------------------------

SPLIT_USER = "stagingops-grp"
SPLIT_PRIMARY = "stagingops-prim"


@pytest.fixture
def split_group_user() -> Iterator[str]:
    """A service user whose primary group is not the group named like it (which exists)."""

    def clean() -> None:
        subprocess.run(["userdel", SPLIT_USER], capture_output=True, check=False)
        for group in (SPLIT_USER, SPLIT_PRIMARY):
            subprocess.run(["groupdel", group], capture_output=True, check=False)

    clean()
    subprocess.run(["groupadd", SPLIT_USER], check=True)
    subprocess.run(["groupadd", SPLIT_PRIMARY], check=True)
    subprocess.run(
        ["useradd", "-M", "-g", SPLIT_PRIMARY, "-s", "/usr/sbin/nologin", SPLIT_USER], check=True
    )
    try:
        yield SPLIT_USER
    finally:
        clean()


def test_slot_directories_get_the_service_users_primary_group(
    sandbox, provisioned, split_group_user, tmp_path
):
    from devtools.sandbox import SERVICE_USER

    variant = inventory_variant(
        sandbox,
        tmp_path,
        (f'service_user = "{SERVICE_USER}"', f'service_user = "{split_group_user}"'),
    )
    env = {"STAGING_INVENTORY": str(variant)}
    slot_dir = sandbox.hosts[0].root / "srv/staging/staging-1"
    try:
        first = provision_json(sandbox, "--slots", "1", env=env)
        assert not first["failed"], first
        primary = grp.getgrnam(SPLIT_PRIMARY).gr_gid
        for path in (slot_dir, slot_dir / "releases", slot_dir / "shared"):
            assert path.stat().st_gid == primary, path
        again = provision_json(sandbox, "--slots", "1", env=env)
        assert again["changed"] == 0, _changes(again)
    finally:
        back = provision_json(sandbox, "--slots", "1")
    assert not back["failed"], back
    assert Path(slot_dir).owner() == SERVICE_USER
    # The unit templates (their User=) changed under the host's other slots too, in runs
    # limited to slot 1: the next full run hands over those that are deployed, and only that.
    full = provision_json(sandbox)
    assert not full["failed"], full
    assert {c["action"] for c in _changes(full)} <= {"hand over", "restart in place"}, full
    assert provision_json(sandbox)["changed"] == 0


# --- the SSH connection lost in the middle of a run -----------------------------------------------


def test_a_connection_cut_before_the_upload_is_regained_and_the_run_converges(sandbox, provisioned):
    """The connection's socket shut down just before the upload (as a dropped network, or a
    fresh droplet's session gone after apt): the run connects again, converges from the host
    as it is, and succeeds; what the cut failed is marked retried; a second run changes
    nothing."""
    vhost = sandbox.hosts[0].root / "etc/nginx/sites-available/staging-5.justapply.net.conf"
    good = vhost.read_bytes()
    vhost.write_bytes(good + b"# drift\n")
    report = provision_json(sandbox, env={"STAGING_OPS_CUT_AT": "provision:before-upload"})
    assert not report["failed"], report
    steps = report["hosts"][0]["steps"]
    names = [s["step"] for s in steps]
    reconnect = steps[names.index("reconnect")]
    assert reconnect["outcome"] == "changed"
    assert "the connection was lost" in reconnect["detail"]
    assert {s["step"] for s in steps if s["outcome"] == "retried"} >= {"upload"}
    assert not [s for s in steps if s["outcome"] == "failed"]
    # The second pass planned from the host as it was: the drifted vhost once, restored.
    files = [c for c in _changes(report) if c["step"] == "nginx files"]
    assert files == [{"step": "nginx files", "target": str(vhost), "action": "update"}]
    assert vhost.read_bytes() == good
    assert provision_json(sandbox)["changed"] == 0
