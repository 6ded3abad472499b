"""The candidate hand-over on the real sandbox, measured through its real nginx by a probe at
about 50 requests a second (devtools/probe.py), during each deploy and for 2 s after: a good
deploy drops no request and switches old -> new once; a broken release never answers one."""

from __future__ import annotations

import os
import re
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from devtools.probe import Probe
from devtools.sample_repo import WRONG_COMMIT
from staging_ops.inventory import load_inventory
from staging_ops.slots.owner import default_owner
from tests.conftest import run_invoke
from tests.sandbox.deploying import GO_LIVE_STEPS, commit_of, deploy, releases, served
from tests.sandbox.slots import slots_for

# SLOT: most tests; SECOND_SLOT: deploys at the same time as SLOT.
SLOT, SECOND_SLOT = slots_for(__name__)
NEW_STEPS = GO_LIVE_STEPS


@pytest.fixture(scope="module")
def box(sandbox, provisioned):
    first = deploy(sandbox, "main", SLOT)
    assert first.returncode == 0, first.stdout + first.stderr
    return sandbox


def probe(box, slot: int = SLOT) -> Probe:
    inventory = load_inventory(box.inventory_path)
    return Probe(inventory.host_of(inventory.slots[slot]), inventory.slots[slot])


def candidate_listening(box, slot: int = SLOT) -> list[int]:
    """The slot's candidate ports something listens on (none, once a deploy has ended)."""
    inventory = load_inventory(box.inventory_path)
    chosen = inventory.slots[slot]
    found = []
    for port in chosen.candidate_ports(inventory.host_of(chosen)):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                found.append(port)
    return found


def candidate_link(box, slot: int = SLOT):
    return box.hosts[0].root / f"srv/staging/staging-{slot}/candidate"


def test_a_good_deploy_drops_nothing_and_switches_once(box):
    assert deploy(box, "main", SLOT).returncode == 0
    old, new = commit_of(box, "main"), commit_of(box, "feat-x")
    with probe(box) as watch:
        result = deploy(box, "feat-x", SLOT)
        watch.stop(after=2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert watch.failed == 0, watch.counts()
    assert watch.sequence() == [old, new], watch.counts()
    assert len(watch.answers) > 50
    # Each new step has its line, in order, with its time.
    lines = [line for line in result.stdout.splitlines() if re.search(r"\d+\.\d\ds", line)]
    named = [next((s for s in NEW_STEPS if f" {s} " in line), None) for line in lines]
    assert [n for n in named if n] == list(NEW_STEPS)
    assert not candidate_listening(box) and not candidate_link(box).is_symlink()


@pytest.mark.parametrize(
    ("branch", "problem"),
    [
        ("broken-start", f"job-search-ui-candidate@staging-{SLOT}.service is "),
        ("broken-version", f"candidate /api/version reports commit '{WRONG_COMMIT}'"),
        ("broken-500", "candidate /api/version answers HTTP 500"),
        ("broken-hang", "/api/version on the candidate: no answer within 5s (it hangs)"),
    ],
)
def test_a_broken_release_never_answers_a_request(box, branch, problem):
    assert deploy(box, "feat-x", SLOT).returncode == 0
    good, bad = commit_of(box, "feat-x"), commit_of(box, branch)
    with probe(box) as watch:
        result = deploy(box, branch, SLOT)
        watch.stop(after=2)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"staging-{SLOT}: candidate verify failed: " in result.stderr
    assert problem in result.stderr
    assert "nothing was switched, the previous release keeps serving" in result.stderr
    assert "Traceback" not in result.stderr
    assert " switch " not in result.stdout
    assert watch.failed == 0, watch.counts()
    assert bad not in watch.answers and WRONG_COMMIT not in watch.answers
    assert set(watch.answers) == {good}
    assert served(box, SLOT) == good
    assert (releases(box, SLOT)[-1] / ".bad").exists()
    assert not candidate_listening(box) and not candidate_link(box).is_symlink()
    # The failed attempt is history: who, branch@commit, the step, what serves now.
    serving = os.readlink(candidate_link(box).parent / "current").rsplit("/", 1)[-1]
    history = run_invoke("history", "--slot", str(SLOT), env=box.env())
    assert history.returncode == 0, history.stderr
    line = next(x for x in history.stdout.splitlines() if "deploy failed" in x)
    assert f"{branch}@{bad[:12]}: candidate verify failed; serving {serving}" in line
    assert default_owner() in line


def test_rollback_hands_over_the_same_way(box):
    assert deploy(box, "main", SLOT).returncode == 0
    assert deploy(box, "feat-x", SLOT).returncode == 0
    with probe(box) as watch:
        result = run_invoke("rollback", "--slot", str(SLOT), "--task", f"JA-{SLOT}", env=box.env())
        watch.stop(after=2)
    assert result.returncode == 0, result.stdout + result.stderr
    for step in ("candidate verify", "hand-over", "main verify"):
        assert f" {step} " in result.stdout
    assert watch.failed == 0, watch.counts()
    assert watch.sequence() == [commit_of(box, "feat-x"), commit_of(box, "main")]
    assert not candidate_listening(box)


def test_two_slots_deploying_at_once_drop_nothing(box):
    slots = (SLOT, SECOND_SLOT)
    for slot in slots:
        assert deploy(box, "main", slot).returncode == 0
    watches = [probe(box, slot) for slot in slots]
    for watch in watches:
        watch.__enter__()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda s: deploy(box, "feat-x", s), slots))
    for watch in watches:
        watch.stop(after=2)
    old, new = commit_of(box, "main"), commit_of(box, "feat-x")
    for slot, result, watch in zip(slots, results, watches, strict=True):
        assert result.returncode == 0, result.stdout + result.stderr
        assert watch.failed == 0, (slot, watch.counts())
        assert watch.sequence() == [old, new], (slot, watch.counts())
        assert not candidate_listening(box, slot)
