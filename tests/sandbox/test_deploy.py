"""invoke deploy / rollback / verify / logs on the real sandbox with the sample app's branches."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devtools import sandbox as sandbox_mod
from devtools.sample_repo import WRONG_COMMIT, push_branch
from staging_ops.inventory import load_inventory
from tests.conftest import ROOT, inventory_as, run_invoke, sandbox_ports
from tests.sandbox.deploying import (
    GO_LIVE_STEPS,
    commit_of,
    deploy,
    releases,
    served,
    start_deploy,
    wait_served,
)
from tests.sandbox.slots import slots_for

# SLOT: this module's deploys; NAMELESS_SLOT and LINEAR_SLOT: deploys that claim a free slot.
SLOT, NAMELESS_SLOT, LINEAR_SLOT = slots_for(__name__)


@pytest.fixture(scope="module")
def box(sandbox, provisioned):
    first = deploy(sandbox, "main", SLOT)
    assert first.returncode == 0, first.stdout + first.stderr
    return sandbox


def test_feat_x_is_live_verified_and_recorded(box):
    result = deploy(box, "feat-x", SLOT)
    assert result.returncode == 0, result.stdout + result.stderr
    commit = commit_of(box, "feat-x")
    assert served(box, SLOT) == commit
    assert f"deployed feat-x ({commit[:12]}) to staging-{SLOT}" in result.stdout
    assert f"https://staging-{SLOT}.justapply.net" in result.stdout
    for step in ("claim", "lock", "fetch", "export + venv", "migrate", *GO_LIVE_STEPS, "record"):
        assert f" {step} " in result.stdout
    status = run_invoke("status", "--json", env=box.env())
    assert status.returncode == 0, status.stderr
    row = next(r for r in json.loads(status.stdout) if r["slot"] == SLOT)
    assert (row["branch"], row["commit"], row["task"]) == ("feat-x", commit, "JA-4")
    verify = run_invoke("verify", "--slot", str(SLOT), "--json", env=box.env())
    assert verify.returncode == 0, verify.stdout + verify.stderr
    checked = json.loads(verify.stdout)
    assert checked["ok"] and checked["served"]["commit"] == commit
    deploy_log = box.hosts[0].root / f"srv/staging/staging-{SLOT}/deploys.log"
    assert f"feat-x {commit}" in deploy_log.read_text().splitlines()[-1]


@pytest.mark.parametrize(
    ("branch", "steps", "details"),
    [
        # Both fail on the candidate, before anything is switched (test_deploy_handover.py
        # has them through nginx).
        ("broken-start", ("candidate verify",), ("does not stay up",)),
        ("broken-version", ("candidate verify",), (f"reports commit '{WRONG_COMMIT}'",)),
        ("broken-migration", ("migrate",), ("0002_broken",)),
    ],
)
def test_broken_branch_never_replaces_a_working_one(box, branch, steps, details):
    assert deploy(box, "feat-x", SLOT).returncode == 0
    good = commit_of(box, "feat-x")
    result = deploy(box, branch, SLOT)
    assert result.returncode == 1, result.stdout
    assert any(f"staging-{SLOT}: {step} failed: " in result.stderr for step in steps)
    assert any(detail in result.stderr for detail in details)
    assert "Traceback" not in result.stderr
    assert wait_served(box, SLOT) == good
    bad = [p for p in releases(box, SLOT) if (p / ".bad").exists()]
    assert bad and bad[-1].name.endswith(commit_of(box, branch)[:7])
    assert "nothing was switched" in result.stderr
    if steps != ("migrate",):
        assert (
            f"--- last lines of job-search-ui-candidate@staging-{SLOT}.service ---" in result.stderr
        )
    verify = run_invoke("verify", "--slot", str(SLOT), env=box.env())
    assert verify.returncode == 0, verify.stdout


def test_new_requirements_build_a_venv_and_same_requirements_reuse_it(box):
    first = deploy(box, "new-deps", SLOT)
    assert first.returncode == 0, first.stderr
    second = deploy(box, "new-deps", SLOT)
    assert second.returncode == 0, second.stderr
    main = deploy(box, "main", SLOT)
    venv_of = {
        r.name: os.readlink(r / ".venv") for r in releases(box, SLOT) if (r / ".venv").is_symlink()
    }
    new_venvs = {v for n, v in venv_of.items() if n.endswith(commit_of(box, "new-deps")[:7])}
    main_venvs = {v for n, v in venv_of.items() if n.endswith(commit_of(box, "main")[:7])}
    assert len(new_venvs) == 1 and len(main_venvs) == 1 and new_venvs != main_venvs
    assert "venv reused" in second.stdout and "venv reused" in main.stdout


def test_two_deploys_at_once_one_waits_for_nobody(box):
    lock_note = box.hosts[0].root / f"srv/staging/staging-{SLOT}/.deploy.lock.json"
    first = start_deploy(box, "feat-x", SLOT)
    try:
        deadline = time.monotonic() + 10
        while not lock_note.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lock_note.exists()
        second = deploy(box, "main", SLOT)
        assert second.returncode == 3, second.stdout + second.stderr
        assert "a deploy is already running: lock held by" in second.stderr
        assert "since 20" in second.stderr
    finally:
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, out + err
    assert not lock_note.exists()


def test_a_hung_lock_older_than_the_timeout_is_taken_over_with_a_warning(box):
    """A holder that is alive but stuck (its channel open) past the deploy timeout."""
    from staging_ops.deploy.lock import lock_script
    from staging_ops.remote import connect

    inventory = load_inventory(box.inventory_path)
    slot_dir = box.hosts[0].root / f"srv/staging/staging-{SLOT}"
    session = connect(inventory.hosts["h1"])
    note = {
        "holder": "stuck@elsewhere",
        "host": "far",
        "pid": 1,
        "started": "2000-01-01T00:00:00+00:00",
    }
    # The real holder script, as a deploy that hangs would leave it running.
    channel = session.connection.client.get_transport().open_session()
    channel.exec_command(lock_script(str(slot_dir / ".deploy.lock"), note))
    try:
        assert channel.makefile("r").readline().strip() == "LOCKED"
        result = deploy(box, "feat-x", SLOT)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "took over the deploy lock of stuck@elsewhere on far" in result.stdout
        assert served(box, SLOT) == commit_of(box, "feat-x")
    finally:
        channel.close()
        session.close()


@pytest.mark.parametrize(
    "point",
    [
        "deploy:after-fetch",
        "deploy:after-venv",
        "deploy:after-migrate",
        "deploy:candidate-running",
        "deploy:after-switch",
        "deploy:during-handover",
        "deploy:during-restart",
    ],
)
def test_kill_9_at_any_step_leaves_old_or_new_serving(box, point):
    assert deploy(box, "feat-x", SLOT).returncode == 0
    old, new = commit_of(box, "feat-x"), commit_of(box, "main")
    killed = deploy(box, "main", SLOT, env={"STAGING_OPS_CRASH_AT": point})
    assert killed.returncode == -signal.SIGKILL
    time.sleep(0.5)  # a detached restart may still be finishing
    assert wait_served(box, SLOT) in (old, new)
    again = deploy(box, "main", SLOT)
    assert again.returncode == 0, again.stdout + again.stderr
    assert served(box, SLOT) == new
    # The next deploy stopped any candidate the killed one left (it starts its own first).
    slot_dir = box.hosts[0].root / f"srv/staging/staging-{SLOT}"
    assert not (slot_dir / "candidate").is_symlink()
    inventory = load_inventory(box.inventory_path)
    chosen = inventory.slots[SLOT]
    for port in chosen.candidate_ports(inventory.host_of(chosen)):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"candidate on :{port}"


def test_unknown_branch_changes_nothing(box):
    before = [p.name for p in releases(box, SLOT)]
    result = deploy(box, "no-such-branch", SLOT)
    assert result.returncode == 1
    assert "fetch failed: branch not found: 'no-such-branch'" in result.stderr
    assert [p.name for p in releases(box, SLOT)] == before


def test_old_releases_are_pruned_but_never_current_or_previous(box):
    for branch in ("main", "feat-x", "new-deps", "main", "feat-x", "main", "feat-x"):
        assert deploy(box, branch, SLOT).returncode == 0
    kept = releases(box, SLOT)
    assert len(kept) <= 5
    current = os.readlink(box.hosts[0].root / f"srv/staging/staging-{SLOT}/current")
    assert current.rsplit("/", 1)[-1] in {p.name for p in kept}


def test_rollback_skips_bad_releases_and_is_verified(box):
    assert deploy(box, "feat-x", SLOT).returncode == 0
    assert deploy(box, "broken-version", SLOT).returncode == 1
    assert deploy(box, "main", SLOT).returncode == 0
    result = run_invoke("rollback", "--slot", str(SLOT), env=box.env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert served(box, SLOT) == commit_of(box, "feat-x")
    status = json.loads(run_invoke("status", "--json", "--no-health", env=box.env()).stdout)
    assert next(r for r in status if r["slot"] == SLOT)["commit"] == commit_of(box, "feat-x")
    bad = next(p for p in releases(box, SLOT) if (p / ".bad").exists())
    refused = run_invoke("rollback", "--slot", str(SLOT), "--to", bad.name, env=box.env())
    assert refused.returncode == 2 and "marked bad" in refused.stderr


def test_verify_reports_a_mismatch_with_the_registry(box):
    assert deploy(box, "main", SLOT).returncode == 0
    from staging_ops.registry import PostgresRegistry

    registry = PostgresRegistry(box.registry_dsn)
    try:
        registry.record_deploy(SLOT, "main", "f" * 40, "test")
    finally:
        registry.close()
    result = run_invoke("verify", "--slot", str(SLOT), env=box.env())
    assert result.returncode == 1
    assert "mismatch" in result.stdout
    assert "/api/version serves " in result.stdout  # the drift between registry and served
    assert "but the registry records ffffffffffff" in result.stdout
    assert deploy(box, "main", SLOT).returncode == 0


def test_logs_show_this_slots_ui_log(box):
    assert deploy(box, "main", SLOT).returncode == 0
    result = run_invoke("logs", "--slot", str(SLOT), "-n", "5", env=box.env())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert 0 < len(lines) <= 6
    assert any("ui:" in line for line in lines)
    bad = run_invoke("logs", "--slot", str(SLOT), "--service", "db", env=box.env())
    assert bad.returncode == 2


def test_claim_rules_before_anything_is_touched(box):
    other = run_invoke(
        "deploy", "--slot", str(SLOT), "--branch", "main", "--task", "JA-99", env=box.env()
    )
    assert other.returncode == 3 and f"held by task JA-{SLOT}" in other.stderr
    before = releases(box, NAMELESS_SLOT)
    nameless = run_invoke("deploy", "--slot", str(NAMELESS_SLOT), "--branch", "main", env=box.env())
    assert nameless.returncode == 2 and "no task is known" in nameless.stderr
    assert releases(box, NAMELESS_SLOT) == before
    for bad in (
        ["--slot", "11", "--branch", "main"],
        ["--slot", str(SLOT), "--branch", "a..b"],
        ["--slot", str(SLOT), "--branch", "-rf"],
    ):
        result = run_invoke("deploy", *bad, env=box.env())
        assert result.returncode == 2, bad


def test_branch_named_after_a_linear_issue_claims_for_it(box):
    sha = push_branch(box.repo_path, "alice/ja-77-search", {"NOTE.txt": "ja-77\n"})
    result = run_invoke(
        "deploy", "--slot", str(LINEAR_SLOT), "--branch", "alice/ja-77-search", env=box.env()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "claimed for JA-77" in result.stdout
    assert served(box, LINEAR_SLOT) == sha
    released = run_invoke(
        "release", "--slot", str(LINEAR_SLOT), "--task", "JA-77", "--stop", env=box.env()
    )
    assert released.returncode == 0, released.stderr
    assert served(box, LINEAR_SLOT) is None


def test_a_sudoer_deploys_like_root(box, os_user, tmp_path):
    user = os_user("stagingops-deployer", passwordless_sudo=True)
    env = {"STAGING_INVENTORY": str(inventory_as(box, user, tmp_path))}
    result = deploy(box, "feat-x", SLOT, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert served(box, SLOT) == commit_of(box, "feat-x")
    logs = run_invoke("logs", "--slot", str(SLOT), "-n", "3", env={**box.env(), **env})
    assert logs.returncode == 0 and "ui:" in logs.stdout


def test_deploy_staging_script_keeps_the_documented_command(box):
    script = ROOT / "scripts/deploy-staging.sh"
    result = subprocess.run(
        ["bash", str(script), "4", "feat-x"],
        cwd=ROOT,
        env={**os.environ, **box.env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert served(box, SLOT) == commit_of(box, "feat-x")


def test_release_stop_and_reset_db_leave_an_empty_stopped_slot(box):
    assert deploy(box, "main", SLOT).returncode == 0
    import psycopg2

    def tables() -> list[str]:
        conn = psycopg2.connect(box.admin_dsn.rsplit("/", 1)[0] + f"/job_search_staging_{SLOT}")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                return [r[0] for r in cur.fetchall()]
        finally:
            conn.close()

    assert "app_migrations" in tables()
    result = run_invoke(
        "release",
        "--slot",
        str(SLOT),
        "--task",
        f"JA-{SLOT}",
        "--stop",
        "--reset-db",
        env=box.env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"recreated job_search_staging_{SLOT} empty" in result.stdout
    assert tables() == []
    assert served(box, SLOT) is None
    assert not (box.hosts[0].root / f"srv/staging/staging-{SLOT}/current").exists()
    # provision-all leaves a stopped slot stopped: it waits for its next deploy.
    report = json.loads(run_invoke("provision-all", "--json", env=box.env()).stdout)
    assert (
        report["changed"] == 0
        and f"staging-{SLOT}" in report["hosts"][0]["waiting_for_first_deploy"]
    )
    assert deploy(box, "main", SLOT).returncode == 0
    assert served(box, SLOT) == commit_of(box, "main")


def test_ten_slots_deployed_at_once():
    directory = Path(tempfile.mkdtemp(prefix="staging-ops-ten-"))
    directory.chmod(0o755)
    ports = sandbox_ports(300)
    try:
        ten = sandbox_mod.up(directory, ports=ports)
        assert run_invoke("provision-all", env=ten.env()).returncode == 0
        shas = {
            n: push_branch(ten.repo_path, f"slot-{n}", {"SLOT.txt": f"{n}\n"}) for n in range(1, 11)
        }
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(lambda n: deploy(ten, f"slot-{n}", n), range(1, 11)))
        for n, result in zip(range(1, 11), results, strict=True):
            assert result.returncode == 0, f"slot {n}: {result.stdout}{result.stderr}"
            assert served(ten, n) == shas[n]
    finally:
        sandbox_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)
