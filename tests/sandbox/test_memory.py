"""Memory on the real sandbox with the fast sample app: every deploy and rollback asks whether
the hand-over fits before its candidate starts (a test inventory whose host must keep more
free than any machine has is refused with one line, nothing started, nothing switched), and
`status --json` reports what each slot's processes use."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from devtools.sample_repo import resolve
from staging_ops import remote
from staging_ops.health import public_version
from staging_ops.inventory import load_inventory
from tests.conftest import inventory_variant, run_invoke
from tests.sandbox.slots import slot_for

SLOT = slot_for(__name__)
TASK = "JA-303"
# More than any machine has: every hand-over must be refused.
HUGE_RESERVE = ("[hosts.h1]\n", "[hosts.h1]\nmemory_reserve_mb = 1048576\n")
REFUSAL = re.compile(
    rf"^error: staging-{SLOT}: memory check failed: not enough memory for the hand-over: "
    r"it needs (\d+) MB "
    r"\(candidate web (\d+) MB measured \+ airflow (\d+) MB measured \+ memory_reserve_mb "
    r"1048576 MB kept free\), the droplet has (\d+) MB available; no candidate was started; "
    r"nothing was switched, the previous release keeps serving$"
)


def run(box, verb: str, *args: str, inventory: Path | None = None):
    env = box.env()
    if inventory:
        env["STAGING_INVENTORY"] = str(inventory)
    return run_invoke(verb, "--slot", str(SLOT), "--task", TASK, *args, env=env)


def newest_event_id(box) -> int:
    """The id of the slot's newest history event (0 for none)."""
    history = run_invoke("history", "--slot", str(SLOT), "--json", env=box.env())
    assert history.returncode == 0, history.stderr
    return max((e["id"] for e in json.loads(history.stdout)), default=0)


def served(box) -> str | None:
    inventory = load_inventory(box.inventory_path)
    slot = inventory.slots[SLOT]
    answer = public_version(inventory.hosts[slot.host], slot)
    return answer["commit"] if answer else None


def slot_dir(box) -> Path:
    return box.hosts[0].root / f"srv/staging/staging-{SLOT}"


def candidate_states(box) -> list[str]:
    """systemctl's word for each of the slot's candidate units."""
    inventory = load_inventory(box.inventory_path)
    names = [f"job-search-{u}-candidate@staging-{SLOT}" for u in ("ui", "airflow-webserver")]
    session = remote.connect(inventory.hosts["h1"])
    try:
        _, out, _ = session.run("systemctl is-active " + " ".join(names), check=False)
    finally:
        session.close()
    return out.split()


def pss_kb_of_processes_in(releases: Path) -> int:
    """What the slot's processes use, found another way than slot-instances.sh's: every process
    whose working directory is one of the slot's releases, its smaps_rollup's Pss."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not os.readlink(entry / "cwd").startswith(f"{releases}/"):
                continue
            rollup = (entry / "smaps_rollup").read_text()
        except OSError:
            continue
        total += int(rollup.split("\nPss:")[1].split()[0])
    return total


@pytest.fixture(scope="module")
def box(sandbox, provisioned):
    first = run(sandbox, "deploy", "--branch", "main")
    assert first.returncode == 0, first.stdout + first.stderr
    # A first deploy has nothing of the slot's own to measure: the inventory's estimate.
    assert re.search(r" memory check .*web 300 MB estimated", first.stdout), first.stdout
    return sandbox


def test_a_redeploy_measures_what_the_slot_uses(box):
    result = run(box, "deploy", "--branch", "feat-x")
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if " memory check " in x)
    assert re.search(r"web \d+ MB measured, airflow \d+ MB measured\), \d+ MB available", line)
    # Printed just before the candidate starts.
    steps = [x.split()[1:3] for x in result.stdout.splitlines() if x.startswith("  ok")]
    assert steps.index(["memory", "check"]) + 1 == steps.index(["candidate", "start"])


def test_a_hand_over_that_does_not_fit_is_refused_before_anything_starts(box, tmp_path):
    assert run(box, "deploy", "--branch", "main").returncode == 0
    main = resolve(box.repo_path, "main")
    releases_before = sorted(p.name for p in (slot_dir(box) / "releases").iterdir())
    current_before = os.readlink(slot_dir(box) / "current")
    tight = inventory_variant(box, tmp_path, HUGE_RESERVE)
    seen = newest_event_id(box)

    refused = run(box, "deploy", "--branch", "feat-x", inventory=tight)

    assert refused.returncode == 1, refused.stdout + refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and REFUSAL.match(lines[0]), refused.stderr
    needs, web, airflow, available = map(int, REFUSAL.match(lines[0]).groups())
    assert needs == web + airflow + 1048576 and web > 0 and airflow > 0 and available > 0
    assert " memory check " in refused.stdout and " candidate start " not in refused.stdout
    # Nothing started, nothing switched: the previous release serves, no candidate ran.
    assert candidate_states(box) == ["inactive", "inactive"]
    assert not (slot_dir(box) / "candidate").exists()
    assert os.readlink(slot_dir(box) / "current") == current_before
    assert served(box) == main
    # The exported release was never started: neither verified nor judged bad.
    new = [
        p
        for p in (slot_dir(box) / "releases").iterdir()
        if p.name not in releases_before and not p.name.startswith(".")
    ]
    assert len(new) == 1 and not (new[0] / ".bad").exists() and not (new[0] / ".ok").exists()
    # The refusal is in the slot's history, naming the step (the slot is shared: only events
    # since this deploy count).
    history = run_invoke("history", "--slot", str(SLOT), "--json", env=box.env())
    since = [e for e in json.loads(history.stdout) if e["id"] > seen]
    failed = [e for e in since if e["action"] == "deploy failed"]
    assert len(failed) == 1 and "memory check" in json.dumps(failed[0]), history.stdout
    assert run_invoke("verify", "--slot", str(SLOT), env=box.env()).returncode == 0


def test_a_rollback_that_does_not_fit_is_refused_too(box, tmp_path):
    assert run(box, "deploy", "--branch", "main").returncode == 0
    assert run(box, "deploy", "--branch", "feat-x").returncode == 0
    feat = resolve(box.repo_path, "feat-x")
    tight = inventory_variant(box, tmp_path, HUGE_RESERVE)

    refused = run(box, "rollback", inventory=tight)

    assert refused.returncode == 1, refused.stdout + refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and REFUSAL.match(lines[0]), refused.stderr
    assert candidate_states(box) == ["inactive", "inactive"]
    assert served(box) == feat
    # With the reserve the droplet can keep, the same rollback goes through.
    assert run(box, "rollback").returncode == 0
    assert served(box) == resolve(box.repo_path, "main")


def test_status_json_reports_each_slots_memory(box):
    status = run_invoke("status", "--json", env=box.env())
    assert status.returncode == 0, status.stderr
    rows = {r["slot"]: r for r in json.loads(status.stdout)}
    reported = rows[SLOT]["memory_mb"]
    measured = pss_kb_of_processes_in(slot_dir(box) / "releases") / 1024
    # The sample app's three processes: a few MB each; the two readings a moment apart.
    assert reported > 0 and abs(reported - measured) <= max(2, measured * 0.2), (reported, measured)
    # Every slot of the host was read (0 for one that runs nothing).
    slots = load_inventory(box.inventory_path).slots
    assert all(isinstance(rows[n]["memory_mb"], int) for n in slots)
    without = run_invoke("status", "--json", "--no-health", env=box.env())
    assert all(r["memory_mb"] is None for r in json.loads(without.stdout))
