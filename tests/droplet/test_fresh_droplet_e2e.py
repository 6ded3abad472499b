"""A fresh Debian 12 droplet (systemd as PID 1, nothing preinstalled) becomes a ready staging
host through the operator's own commands, and stays one across a reboot.

The tests run in file order on one droplet and build on each other, like an operator's day:
provision from nothing (its connection cut right after apt), run again (nothing to do),
deploy, a broken deploy, logs, exposure, release --stop, reboot, a non-root operator, then
--check on a second fresh droplet."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import devtools.droplet as droplet_mod
from tests.conftest import run_invoke
from tests.droplet.conftest import droplet_dir, require_droplet_support
from tests.sandbox.deploying import push_scheduler_dies

PACKAGES = ["nginx", "postgresql", "git", "python3-venv"]
# A first provision-all installs packages (about 40 s here); reboots and deploys are quick.
SLOW = 600


@pytest.fixture(scope="module")
def fresh() -> Iterator[droplet_mod.Droplet]:
    require_droplet_support()
    directory = droplet_dir("staging-ops-e2e-")
    try:
        yield droplet_mod.up(directory, name="e2e")
    finally:
        droplet_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)


def invoke(droplet: droplet_mod.Droplet, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run_invoke(*args, env={**droplet.env(), **env}, timeout=SLOW)


def inside(droplet: droplet_mod.Droplet, command: str) -> str:
    result = droplet_mod.run(droplet, command)
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result.stdout


def as_json(result: subprocess.CompletedProcess) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def commit_of(droplet: droplet_mod.Droplet, branch: str) -> str:
    out = subprocess.run(
        ["git", "--git-dir", str(droplet.repo_path), "rev-parse", f"refs/heads/{branch}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def served_commit(droplet: droplet_mod.Droplet, slot: int) -> str | None:
    """/api/version through the droplet's nginx, as a browser reaches it: the slot's name as
    SNI and Host (curl --resolve; the placeholder certificate is self-signed, hence -k)."""
    name = f"staging-{slot}.justapply.net"
    result = subprocess.run(
        [
            "curl",
            "-sk",
            "--noproxy",
            "*",
            "--max-time",
            "5",
            "--resolve",
            f"{name}:443:{droplet.address}",
            f"https://{name}/api/version",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return json.loads(result.stdout).get("commit")
    except ValueError:
        return None


@pytest.fixture(scope="module")
def first_run(fresh) -> dict:
    # A fresh droplet has no package lists: installing anything fails until apt-get update.
    assert "Unable to locate package" in droplet_mod.run(fresh, "apt-get install -y -q git").stderr
    # Its SSH connection cut right after apt, where a fresh droplet's session has gone away
    # on its own (seen in CI): the run connects again and converges, as an operator's would.
    result = invoke(fresh, "provision-all", "--json", STAGING_OPS_CUT_AT="provision:after-install")
    report = as_json(result)
    assert "installing nginx postgresql git python3-venv" in result.stderr  # progress
    return report


def test_first_provision_installs_and_configures_a_fresh_droplet(fresh, first_run):
    (host,) = first_run["hosts"]
    assert not first_run["failed"], host["error"]
    steps = {s["step"]: s for s in host["steps"]}
    assert "the connection was lost" in steps["reconnect"]["detail"]
    # The pass after the cut found them installed: this run installed them, and says so.
    installed = {c["target"] for c in host["changes"] if c["action"] == "install"}
    assert installed == set(PACKAGES), host["steps"]
    assert steps["install packages"]["outcome"] == "changed"
    for package in PACKAGES:
        assert "install ok installed" in inside(fresh, f"dpkg-query -W -f='${{Status}}' {package}")
    # Enabled at boot and running, with real systemd.
    assert inside(fresh, "systemctl is-enabled nginx postgresql").split() == ["enabled"] * 2
    assert inside(fresh, "systemctl is-active nginx postgresql").split() == ["active"] * 2
    units = inside(fresh, "systemctl is-enabled job-search-ui@staging-4.service").split()
    assert units == ["enabled"]
    # Debian's own default site is gone; ours answers unknown names with nothing.
    assert droplet_mod.run(fresh, "test -e /etc/nginx/sites-enabled/default").returncode == 1
    inside(fresh, "nginx -t -q")
    # The admin password lives only on the droplet, for root only; peer login still works.
    assert inside(fresh, "stat -c %a:%U /srv/staging/.staging-ops/postgres-admin").strip() == (
        "600:root"
    )
    databases = inside(fresh, "runuser -u postgres -- psql -XAtc 'SELECT datname FROM pg_database'")
    assert {f"job_search_staging_{n}" for n in range(1, 11)} <= set(databases.split())


def test_second_provision_changes_nothing_in_one_command(fresh, first_run):
    again = as_json(invoke(fresh, "provision-all", "--json"))
    (host,) = again["hosts"]
    assert (again["changed"], host["commands"], host["uploads"]) == (0, 1, 0), host["changes"]


def test_deploy_verifies_through_nginx_and_a_broken_branch_is_rolled_back(fresh, first_run):
    good = commit_of(fresh, "feat-x")
    deployed = invoke(fresh, "deploy", "--slot", "4", "--branch", "feat-x", "--task", "JA-41")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert served_commit(fresh, 4) == good
    assert as_json(invoke(fresh, "verify", "--slot", "4", "--json"))["ok"] is True
    for broken in ("broken-version", "broken-start"):
        failed = invoke(fresh, "deploy", "--slot", "4", "--branch", broken, "--task", "JA-41")
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert served_commit(fresh, 4) == good, broken
    # Its scheduler dies at once, past the switch. Real systemd shows such a unit as
    # `activating` (SubState auto-restart) and counts the restart only after RestartSec:
    # verify must still see it, and go back.
    dies = push_scheduler_dies(fresh)
    failed = invoke(fresh, "deploy", "--slot", "4", "--branch", dies, "--task", "JA-41")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "rolled back to" in failed.stderr, failed.stderr
    assert served_commit(fresh, 4) == good
    verified = as_json(invoke(fresh, "verify", "--slot", "4", "--json"))
    assert verified["ok"] is True and verified["served"]["commit"] == good


def test_logs_read_the_real_journal(fresh, first_run):
    result = invoke(fresh, "logs", "--slot", "4", "-n", "200")
    assert result.returncode == 0, result.stderr
    assert "ui: listening on http://127.0.0.1:5004" in result.stdout
    assert "systemd[1]: Started job-search-ui@staging-4.service" in result.stdout


def _listening(droplet: droplet_mod.Droplet) -> list[tuple[str, int]]:
    found = []
    for line in inside(droplet, "ss -ltnH").splitlines():
        local = line.split()[3]
        address, _, port = local.rpartition(":")
        found.append((address.strip("[]"), int(port)))
    return found


def test_only_ssh_http_and_https_listen_beyond_loopback(fresh, first_run):
    sockets = _listening(fresh)
    public = {port for address, port in sockets if address not in ("127.0.0.1", "::1")}
    assert public == {22, 80, 443}, sockets
    loopback = {port for address, port in sockets if address in ("127.0.0.1", "::1")}
    assert {5004, 8084, 5432} <= loopback  # slot 4's UI and Airflow, PostgreSQL


def test_after_release_stop_and_a_reboot_the_deployed_slots_come_back(fresh, first_run):
    main = commit_of(fresh, "main")
    deployed = invoke(fresh, "deploy", "--slot", "5", "--branch", "main", "--task", "JA-51")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    released = invoke(fresh, "release", "--slot", "4", "--stop", "--task", "JA-41")
    assert released.returncode == 0, released.stdout + released.stderr

    droplet_mod.reboot(fresh)

    # Nothing failed at boot: a released slot (no `current`) is skipped, not failed.
    assert inside(fresh, "systemctl is-system-running").strip() == "running"
    assert served_commit(fresh, 5) == main
    assert as_json(invoke(fresh, "verify", "--slot", "5", "--json"))["ok"] is True
    slot4 = droplet_mod.run(fresh, "systemctl is-active job-search-ui@staging-4").stdout
    assert slot4.strip() == "inactive"
    again = as_json(invoke(fresh, "provision-all", "--json"))
    assert again["changed"] == 0, again["hosts"][0]["changes"]


def test_claim_and_release_with_a_fresh_database_work_against_the_droplet(fresh, first_run):
    claimed = invoke(fresh, "claim", "--slot", "6", "--task", "JA-61")
    assert claimed.returncode == 0, claimed.stdout + claimed.stderr
    slots = {s["slot"]: s for s in as_json(invoke(fresh, "status", "--json"))}
    assert (slots[6]["status"], slots[6]["task"]) == ("claimed", "JA-61")

    psql = "runuser -u postgres -- psql -XAtq -d job_search_staging_5 -c"
    inside(fresh, f"{psql} 'CREATE TABLE left_behind (id int)'")
    # --reset-db logs in as the admin with the password the droplet keeps (no env password).
    released = invoke(fresh, "release", "--slot", "5", "--reset-db", "--task", "JA-51")
    assert released.returncode == 0, released.stdout + released.stderr
    tables = inside(
        fresh, f"{psql} \"SELECT count(*) FROM pg_tables WHERE tablename = 'left_behind'\""
    )
    assert tables.strip() == "0"
    owner = inside(
        fresh,
        'runuser -u postgres -- psql -XAtqc "SELECT pg_get_userbyid(datdba) FROM pg_database '
        "WHERE datname = 'job_search_staging_5'\"",
    )
    assert owner.strip() == "job_search_staging_5"


def test_a_non_root_operator_with_passwordless_sudo_provisions_the_same_droplet(
    fresh, first_run, tmp_path: Path
):
    inside(
        fresh,
        "id ops >/dev/null 2>&1 || useradd --create-home --shell /bin/bash ops; "
        "echo 'ops ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/ops && chmod 440 /etc/sudoers.d/ops; "
        "install -d -m 700 -o ops -g ops ~ops/.ssh; "
        "install -m 600 -o ops -g ops /root/.ssh/authorized_keys ~ops/.ssh/authorized_keys",
    )
    inventory = droplet_mod.write_inventory(fresh, user="ops", path=tmp_path / "inventory.toml")
    vhost = "/etc/nginx/sites-available/staging-4.justapply.net.conf"
    inside(fresh, f"echo '# edited by hand' >> {vhost}")

    result = invoke(fresh, "provision-all", "--json", STAGING_INVENTORY=str(inventory))
    report = as_json(result)
    (host,) = report["hosts"]
    assert [c["target"] for c in host["changes"]] == [vhost, "nginx"], host["changes"]
    assert "edited by hand" not in inside(fresh, f"cat {vhost}")
    assert inside(fresh, f"stat -c %U {vhost}").strip() == "root"
    again = as_json(invoke(fresh, "provision-all", "--json", STAGING_INVENTORY=str(inventory)))
    assert again["changed"] == 0


def test_check_on_a_second_fresh_droplet_lists_everything_and_changes_nothing():
    require_droplet_support()
    directory = droplet_dir("staging-ops-e2e-check-")
    try:
        second = droplet_mod.up(directory, name="e2e-check")
        result = invoke(second, "provision-all", "--check", "--json")
        report = as_json(result)
        (host,) = report["hosts"]
        assert report["check"] and not report["failed"], host["error"]
        by_step: dict[str, set[str]] = {}
        for change in host["changes"]:
            by_step.setdefault(change["step"], set()).add(change["target"])
        assert by_step["packages"] == set(PACKAGES)
        assert by_step["service user"] == {"staging"}
        assert {f"job_search_staging_{n}" for n in range(1, 11)} <= by_step["databases"]
        assert "nginx" in by_step["services"] and "postgresql" in by_step["services"]
        # Nothing was touched: no package, no directory, no user, not even package lists.
        assert droplet_mod.run(second, "dpkg-query -W nginx").returncode != 0
        assert droplet_mod.run(second, "test -e /srv/staging").returncode == 1
        assert droplet_mod.run(second, "id staging").returncode != 0
        lists = droplet_mod.run(second, "ls /var/lib/apt/lists | grep -c _Packages").stdout
        assert lists.strip() == "0"
    finally:
        droplet_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)
