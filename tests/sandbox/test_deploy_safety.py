"""deploy / rollback / logs review fixes on the real sandbox: shell-safe branch names, rollback
only to verified releases, Ctrl-C and SIGTERM roll back, claim rules checked before anything is
touched, and a failing `logs` exits 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from devtools.sample_repo import push_branch
from staging_ops.health import public_version
from staging_ops.inventory import load_inventory
from staging_ops.render import render_release_env
from tests.conftest import inventory_as, run_invoke
from tests.sandbox.deploying import (
    commit_of,
    deploy,
    push_app_variant,
    push_scheduler_dies,
    served,
    start_deploy,
    wait_served,
)
from tests.sandbox.deploying import releases as slot_releases
from tests.sandbox.slots import slot_for

SLOT = slot_for(__name__)


@pytest.fixture(scope="module")
def box(sandbox, provisioned):
    first = deploy(sandbox, "main", SLOT)
    assert first.returncode == 0, first.stdout + first.stderr
    return sandbox


def releases(box, slot: int = SLOT) -> list[Path]:
    return slot_releases(box, slot)


def slot_dir(box, slot: int = SLOT) -> Path:
    return box.hosts[0].root / f"srv/staging/staging-{slot}"


def current(box, slot: int = SLOT) -> str:
    return os.readlink(slot_dir(box, slot) / "current").rsplit("/", 1)[-1]


def slot_row(box, slot: int = SLOT) -> dict:
    status = run_invoke("status", "--json", "--no-health", env=box.env())
    assert status.returncode == 0, status.stderr
    return next(r for r in json.loads(status.stdout) if r["slot"] == slot)


# --- branch names are shell-safe ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x;touch${IFS}MARKER", "fix(search)-MARKER_NAME"])
def test_a_branch_with_shell_characters_is_refused_before_anything(box, name):
    marker = Path(tempfile.gettempdir()) / f"staging-ops-injected-{uuid.uuid4().hex[:8]}"
    branch = name.replace("MARKER_NAME", marker.name).replace("MARKER", str(marker))
    # git accepts it, and the branch exists: only our own check can stop the deploy.
    push_branch(box.repo_path, branch, {"NOTE.txt": "injected\n"})
    before = [p.name for p in releases(box)]
    result = deploy(box, branch, SLOT)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "only letters, digits, '.', '_', '-' and '/' are allowed" in result.stderr
    assert not marker.exists()
    assert [p.name for p in releases(box)] == before
    assert not any(p.name.endswith(".partial") for p in (slot_dir(box) / "releases").iterdir())
    normal = deploy(box, "feat-x", SLOT)
    assert normal.returncode == 0, normal.stdout + normal.stderr


def test_release_env_reads_the_same_in_sh_and_systemd(box, tmp_path):
    # sh: even a value with `;`, spaces and parentheses stays one literal value.
    hostile = "a b;touch x(y)"
    env_file = tmp_path / ".release-env"
    env_file.write_text(render_release_env("c0ffee", hostile, "2026-01-01T00:00:00+00:00"))
    sourced = subprocess.run(
        [
            "sh",
            "-c",
            'set -a; . ./.release-env; printf "%s|%s" "$DEPLOYED_BRANCH" "$DEPLOYED_COMMIT"',
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (sourced.returncode, sourced.stdout) == (0, f"{hostile}|c0ffee"), sourced.stderr
    assert not (tmp_path / "x(y)").exists()
    # systemd (the unit's EnvironmentFile): the app reports the same branch and commit.
    assert deploy(box, "feat-x", SLOT).returncode == 0
    inventory = load_inventory(box.inventory_path)
    answer = public_version(inventory.hosts["h1"], inventory.slots[SLOT])
    assert answer and answer["branch"] == "feat-x"
    assert answer["commit"] == commit_of(box, "feat-x")


# --- rollback goes only to verified releases, and pruning keeps that one --------------------------


def test_rollback_never_picks_a_release_a_killed_deploy_left(box):
    assert deploy(box, "feat-x", SLOT).returncode == 0
    good = current(box)
    # B: killed after the switch (current, never verified); then five killed after migrate.
    killed = deploy(box, "main", SLOT, env={"STAGING_OPS_CRASH_AT": "deploy:after-switch"})
    assert killed.returncode == -signal.SIGKILL
    for _ in range(5):
        killed = deploy(box, "main", SLOT, env={"STAGING_OPS_CRASH_AT": "deploy:after-migrate"})
        assert killed.returncode == -signal.SIGKILL
    assert deploy(box, "new-deps", SLOT).returncode == 0
    names = [p.name for p in releases(box)]
    assert good in names, "pruning removed the release rollback would pick"
    verified = {p.name for p in releases(box) if (p / ".ok").exists()}
    assert {good, current(box)} <= verified
    assert not any(n.endswith(commit_of(box, "main")[:7]) for n in verified if n != good)
    result = run_invoke("rollback", "--slot", str(SLOT), "--task", f"JA-{SLOT}", env=box.env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert current(box) == good
    assert served(box, SLOT) == commit_of(box, "feat-x")


def test_a_failed_deploy_rolls_back_to_the_last_verified_release(box):
    assert deploy(box, "feat-x", SLOT).returncode == 0
    good = current(box)
    killed = deploy(box, "main", SLOT, env={"STAGING_OPS_CRASH_AT": "deploy:after-switch"})
    assert killed.returncode == -signal.SIGKILL
    assert current(box) != good  # the unverified release is current
    # A release that fails on the candidate switches nothing; one that fails past the switch
    # (its scheduler dies, which only the scheduler restart shows) goes back.
    failed = deploy(box, push_scheduler_dies(box), SLOT)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"rolled back to {good}" in failed.stderr
    assert current(box) == good
    assert wait_served(box, SLOT) == commit_of(box, "feat-x")


def test_a_failed_deploy_goes_back_to_what_served_not_to_a_release_rolled_away_from(box):
    """F is verified, then rolled back from (it stays verified); a failed deploy after that
    must restore what served (A), not the newer F the operator left."""
    assert deploy(box, "main", SLOT).returncode == 0
    assert deploy(box, "feat-x", SLOT).returncode == 0
    left = current(box)
    back = run_invoke("rollback", "--slot", str(SLOT), "--task", f"JA-{SLOT}", env=box.env())
    assert back.returncode == 0, back.stdout + back.stderr
    served_before = current(box)
    assert served_before != left
    failed = deploy(box, push_scheduler_dies(box), SLOT)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"rolled back to {served_before}" in failed.stderr
    assert current(box) == served_before
    assert wait_served(box, SLOT) == commit_of(box, "main")


def test_a_release_verified_before_ok_marks_existed_is_still_a_rollback_target(box):
    """Droplets deployed by an older staging-ops have no `.ok` marks; their deploy log, which
    only verified deploys wrote, says which releases were good."""
    assert deploy(box, "feat-x", SLOT).returncode == 0
    good = current(box)
    (slot_dir(box) / "releases" / good / ".ok").unlink()  # as an older release has none
    failed = deploy(box, push_scheduler_dies(box), SLOT)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"rolled back to {good}" in failed.stderr
    assert current(box) == good
    assert wait_served(box, SLOT) == commit_of(box, "feat-x")


# --- Ctrl-C and SIGTERM roll back -----------------------------------------------------------------


def test_a_release_the_droplet_cannot_mark_verified_fails_record_and_says_so(box):
    """The deploy log cannot be written (here: a directory in its place): the release serves,
    verified, but without its mark it would silently read as never verified. record fails,
    naming why; the registry still says what serves; status and verify flag it unverified."""
    assert deploy(box, "feat-x", SLOT).returncode == 0
    log = slot_dir(box) / "deploys.log"
    kept = log.with_name("deploys.log.kept")
    log.rename(kept)
    log.mkdir()
    try:
        failed = deploy(box, "main", SLOT)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        line = failed.stderr.strip().splitlines()[0]
        assert "serves, verified, but could not be marked so on the droplet" in line, line
        assert f"cannot append to {log}" in line, line
        assert "Traceback" not in failed.stderr
        new = current(box)
        assert not (slot_dir(box) / "releases" / new / ".ok").exists()
        assert served(box, SLOT) == commit_of(box, "main")
        row = slot_row(box)
        assert row["commit"] == commit_of(box, "main")
        verified = run_invoke("verify", "--slot", str(SLOT), env=box.env())
        assert verified.returncode == 1 and f"{new}, never verified" in verified.stdout
    finally:
        log.rmdir()
        kept.rename(log)
    again = deploy(box, "main", SLOT)
    assert again.returncode == 0, again.stdout + again.stderr
    assert run_invoke("verify", "--slot", str(SLOT), env=box.env()).returncode == 0


def push_hanging_branch(box) -> str:
    """A branch whose ui starts (the unit stays active) but never answers: verify waits."""
    needle = "    config = read_ui_config()\n    serve(\n"
    return push_app_variant(box, "hangs-at-start", needle, '    __import__("time").sleep(3600)\n')


def test_a_branch_whose_scheduler_dies_at_start_is_rolled_back(box):
    """The UI answers with the new commit, but Airflow's scheduler exits at once: verify
    looks at every unit of the slot, not only the UI's."""
    assert deploy(box, "feat-x", SLOT).returncode == 0
    good = current(box)
    failed = deploy(box, push_scheduler_dies(box), SLOT)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"job-search-airflow-scheduler@staging-{SLOT}.service is " in failed.stderr
    assert "does not stay up" in failed.stderr and f"rolled back to {good}" in failed.stderr
    assert current(box) == good
    assert wait_served(box, SLOT) == commit_of(box, "feat-x")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_during_the_candidates_verify_leaves_the_old_release(box, signum, code):
    assert deploy(box, "feat-x", SLOT).returncode == 0
    good = current(box)
    push_hanging_branch(box)
    proc = start_deploy(box, "hangs-at-start", SLOT)
    try:
        for line in proc.stdout:
            if " candidate start " in line:
                break
        time.sleep(1.0)  # well inside the candidate's verify, which would wait 30 s
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, out + err
    # Nothing was switched yet: the candidate is stopped, the old release never stopped serving.
    assert "interrupted during candidate verify; nothing was switched" in err
    assert err.strip().count("\n") == 0, err
    assert current(box) == good
    assert wait_served(box, SLOT) == commit_of(box, "feat-x")
    hanging = [p for p in releases(box) if p.name.endswith(commit_of(box, "hangs-at-start")[:7])]
    assert hanging and not (hanging[-1] / ".ok").exists()


# --- deploy --force: the claim rules hold end to end ----------------------------------------------


def test_force_deploy_of_another_tasks_branch_keeps_their_claim(box):
    branch = "bob/ja-88-force"
    sha = push_branch(box.repo_path, branch, {"NOTE.txt": "ja-88\n"})
    before = [p.name for p in releases(box)]
    refused = run_invoke("deploy", "--slot", str(SLOT), "--branch", branch, env=box.env())
    assert refused.returncode == 3 and "held by task JA-5" in refused.stderr
    assert [p.name for p in releases(box)] == before
    forced = run_invoke("deploy", "--slot", str(SLOT), "--branch", branch, "--force", env=box.env())
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert served(box, SLOT) == sha
    row = slot_row(box)
    assert (row["task"], row["branch"], row["commit"]) == (f"JA-{SLOT}", branch, sha)


# --- rollback checks the claim first --------------------------------------------------------------


def test_rollback_checks_the_claim_before_touching_anything(box):
    assert deploy(box, "feat-x", SLOT).returncode == 0
    assert deploy(box, "main", SLOT).returncode == 0
    live = current(box)
    other = run_invoke(
        "rollback", "--slot", str(SLOT), "--owner", "mallory@example.com", env=box.env()
    )
    assert other.returncode == 3, other.stdout + other.stderr
    assert "held by task JA-5" in other.stderr and current(box) == live
    wrong_task = run_invoke("rollback", "--slot", str(SLOT), "--task", "JA-99", env=box.env())
    assert wrong_task.returncode == 3 and current(box) == live
    # A free slot: refused, then allowed with --force (and left free in the registry).
    freed = run_invoke("release", "--slot", str(SLOT), "--task", f"JA-{SLOT}", env=box.env())
    assert freed.returncode == 0, freed.stderr
    refused = run_invoke("rollback", "--slot", str(SLOT), env=box.env())
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "is free" in refused.stderr and current(box) == live
    forced = run_invoke("rollback", "--slot", str(SLOT), "--force", env=box.env())
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert served(box, SLOT) == commit_of(box, "feat-x")
    assert slot_row(box)["status"] == "free"
    again = deploy(box, "main", SLOT)  # claims it back for the other tests
    assert again.returncode == 0, again.stdout + again.stderr


# --- logs: a failing remote command exits 1 -------------------------------------------------------


def test_logs_exits_1_when_the_remote_command_fails(box, os_user, tmp_path):
    user = os_user("stagingops-nosudo", passwordless_sudo=False)
    env = {**box.env(), "STAGING_INVENTORY": str(inventory_as(box, user, tmp_path))}
    result = run_invoke("logs", "--slot", str(SLOT), "-n", "3", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert f"journalctl -u job-search-ui@staging-{SLOT}.service failed on h1" in result.stderr
