"""Deploy, rollback and release of one slot at the same time, on the real sandbox: whatever
the interleaving, the registry ends up describing what the droplet serves (claim.py's fence);
and a deploy of a branch that does not exist changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import INVOKE, ROOT, run_invoke
from tests.test_deploy import commit_of, deploy, served, wait_served

SLOT = 9  # no other test of the shared sandbox claims, deploys to or releases it
TASK = f"JA-{SLOT}"


@pytest.fixture(scope="module")
def box(sandbox, provisioned):
    first = deploy(sandbox, "main", SLOT)
    assert first.returncode == 0, first.stdout + first.stderr
    return sandbox


def row(box) -> dict:
    status = run_invoke("status", "--json", "--no-health", env=box.env())
    assert status.returncode == 0, status.stderr
    return next(r for r in json.loads(status.stdout) if r["slot"] == SLOT)


def history(box) -> list[dict]:
    shown = run_invoke("history", "--slot", str(SLOT), "--json", "--limit", "200", env=box.env())
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def current_commit(box) -> str | None:
    """The commit of the release `current` points to on the droplet (None: no link)."""
    link = box.hosts[0].root / f"srv/staging/staging-{SLOT}/current"
    if not link.is_symlink():
        return None
    env = (link.parent / os.readlink(link) / ".release-env").read_text()
    return next(
        line.split("=", 1)[1].strip('"')
        for line in env.splitlines()
        if line.startswith("DEPLOYED_COMMIT=")
    )


def start_deploy(box, branch: str) -> subprocess.Popen:
    return subprocess.Popen(
        [INVOKE, "deploy", "--slot", str(SLOT), "--branch", branch, "--task", TASK],
        cwd=ROOT,
        env={**os.environ, **box.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_truthful(box, code: int, out: str, commit: str, stopped: bool = False) -> dict:
    """The end state the registry must describe: what `current` points to is what serves and
    what the registry records (or, stopped, nothing serves); a deploy that succeeded holds its
    claim unless a release was recorded after its deploy."""
    assert code in (0, 3), out
    assert "Traceback" not in out, out
    state = row(box)
    live = current_commit(box)
    if live is None:
        assert state["status"] == "free" and served(box, SLOT) is None, (state, out)
        return state
    assert not stopped or code == 0, out
    assert wait_served(box, SLOT) == live, out
    assert state["commit"] == live, (state, live, out)
    events = history(box)  # newest first
    if code == 0:
        assert live == commit, out
        mine = next(i for i, e in enumerate(events) if e["action"] == "deploy")
        assert "serving" not in (events[mine]["detail"] or ""), events[mine]
        if state["status"] != "claimed" or state["task"] != TASK:
            # Released after the deploy recorded itself: the release is newer than the record.
            assert any(e["action"] == "release" for e in events[:mine]), (events[:3], out)
    else:
        assert state["status"] == "free", (state, out)
    return state


def reclaim(box) -> None:
    again = run_invoke("claim", "--slot", str(SLOT), "--task", TASK, env=box.env())
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_branch_that_does_not_exist_changes_nothing(box):
    before, events = row(box), history(box)
    result = deploy(box, "no-such-branch", SLOT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "branch not found: 'no-such-branch'" in result.stderr
    assert "nothing was switched" in result.stderr
    assert row(box) == before and history(box) == events  # not even the claim renewed
    # A free slot stays free.
    assert run_invoke("release", "--slot", str(SLOT), "--task", TASK, env=box.env()).returncode == 0
    before, events = row(box), history(box)
    result = deploy(box, "no-such-branch", SLOT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert row(box) == before and history(box) == events and before["status"] == "free"
    reclaim(box)


def test_release_at_any_moment_of_a_deploy_leaves_the_registry_truthful(box):
    """A plain `release` (registry only, no lock) started 0, 0.3, 0.6 … s after a deploy: the
    deploy stops before its switch, or records what serves; never a silent disagreement."""
    outcomes = set()
    branches = ("feat-x", "main")
    for n, offset in enumerate(x / 10 for x in range(0, 46, 6)):
        branch = branches[n % 2]
        process = start_deploy(box, branch)
        time.sleep(offset)
        released = run_invoke("release", "--slot", str(SLOT), "--task", TASK, env=box.env())
        out, err = process.communicate(timeout=120)
        assert released.returncode == 0, released.stdout + released.stderr
        state = assert_truthful(box, process.returncode, out + err, commit_of(box, branch))
        if process.returncode == 3:
            assert "claim was released during this run" in err, err
        outcomes.add((process.returncode, state["status"]))
        reclaim(box)
    # Every end is one of the truthful three (the claim kept, the deploy refused, or released
    # after it finished); which phases the offsets reach depends on the machine's speed, but
    # they always reach more than one.
    assert outcomes <= {(0, "claimed"), (3, "free"), (0, "free")}, outcomes
    assert len(outcomes) >= 2, outcomes


def test_release_stop_and_a_deploy_at_any_offset_end_in_one_truthful_state(box):
    """`release --stop` and a deploy, each started first, the other 0, 0.2 … s later: both take
    the slot's lock before they write, so the end is released-and-stopped or deployed."""
    for offset in (0, 0.2, 0.5, 1.0):
        # release --stop first: the deploy meets its lock (exit 3, nothing written) or comes
        # after it and claims the free slot.
        stopper = subprocess.Popen(
            [INVOKE, "release", "--slot", str(SLOT), "--task", TASK, "--stop"],
            cwd=ROOT,
            env={**os.environ, **box.env()},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(offset)
        result = deploy(box, "feat-x", SLOT)
        out, err = stopper.communicate(timeout=60)
        assert stopper.returncode in (0, 3), out + err
        state = assert_truthful(
            box, result.returncode, result.stdout + result.stderr, commit_of(box, "feat-x")
        )
        if result.returncode == 3:
            assert "a deploy is already running" in result.stderr, result.stderr
            assert state["status"] == "free" and current_commit(box) is None
        elif state["status"] == "free":
            # The deploy took the lock first and the stop waited for it: stopped after it.
            assert stopper.returncode == 0 and current_commit(box) is None, out + err
            actions = [e["action"] for e in history(box)]
            assert actions.index("release") < actions.index("deploy"), actions[:5]
        else:
            assert state["task"] == TASK, out + err  # the stop first, then the deploy
        if state["status"] == "free":
            reclaim(box)
    for offset in (0, 0.5, 1.5, 3.0):
        # The deploy first: the stop waits for its lock (or is refused, exit 3, changing
        # nothing), then stops what the deploy recorded.
        process = start_deploy(box, "main")
        time.sleep(offset)
        stopped = run_invoke(
            "release", "--slot", str(SLOT), "--task", TASK, "--stop", env=box.env()
        )
        out, err = process.communicate(timeout=120)
        assert stopped.returncode in (0, 3), stopped.stdout + stopped.stderr
        state = assert_truthful(box, process.returncode, out + err, commit_of(box, "main"))
        if stopped.returncode == 0:
            assert state["status"] == "free" and current_commit(box) is None
        if state["status"] == "free":
            reclaim(box)


def test_release_during_a_rollback_leaves_the_registry_truthful(box):
    for offset in (0, 1.0, 2.0):
        assert deploy(box, "feat-x", SLOT).returncode == 0
        assert deploy(box, "main", SLOT).returncode == 0
        process = subprocess.Popen(
            [INVOKE, "rollback", "--slot", str(SLOT), "--task", TASK],
            cwd=ROOT,
            env={**os.environ, **box.env()},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(offset)
        released = run_invoke("release", "--slot", str(SLOT), "--task", TASK, env=box.env())
        out, err = process.communicate(timeout=120)
        assert released.returncode == 0, released.stdout + released.stderr
        assert_truthful(box, process.returncode, out + err, commit_of(box, "feat-x"))
        reclaim(box)


def test_a_forced_rollback_of_a_free_slot_records_what_serves(box, tmp_path: Path):
    assert deploy(box, "feat-x", SLOT).returncode == 0
    assert deploy(box, "main", SLOT).returncode == 0
    assert run_invoke("release", "--slot", str(SLOT), "--task", TASK, env=box.env()).returncode == 0
    forced = run_invoke("rollback", "--slot", str(SLOT), "--force", env=box.env())
    assert forced.returncode == 0, forced.stdout + forced.stderr
    state, live = row(box), current_commit(box)
    assert live == commit_of(box, "feat-x") and wait_served(box, SLOT) == live
    assert state["status"] == "free" and state["commit"] == live
    reclaim(box)
