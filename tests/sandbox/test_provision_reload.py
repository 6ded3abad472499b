"""provision-all changing a deployed slot's environment on the real sandbox, measured through
its real nginx by probes on `/api/version` and Airflow's health (devtools/probe.py): the
slot goes live with the new environment through the deploy's hand-over and drops nothing;
`--check` names the slot and why; a second run changes nothing and restarts nothing; an
environment that breaks the app fails the slot's candidate, and the old processes keep
serving."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from devtools.probe import Probe
from staging_ops.inventory import load_inventory
from tests.conftest import run_invoke
from tests.sandbox.deploying import commit_of, deploy
from tests.sandbox.slots import slot_for

SLOT = slot_for(__name__)
IDENTIFIER = f"staging-{SLOT}"
MARK = "RELOAD_MARK"


def with_app_env(box, tmp_path: Path, value: str) -> Path:
    """The sandbox's inventory with `[app.env] RELOAD_MARK = value` (a table TOML lets come
    after the slots), under the same file name (the vhosts' comment names it)."""
    path = tmp_path / value / "inventory.toml"
    path.parent.mkdir()
    path.write_text(f'{box.inventory_path.read_text()}\n[app.env]\n{MARK} = "{value}"\n')
    return path


def provision(box, inventory: Path | None, *args: str, crash_at: str | None = None):
    env = box.env()
    if crash_at:
        env["STAGING_OPS_CRASH_AT"] = crash_at
    if inventory is not None:
        env["STAGING_INVENTORY"] = str(inventory)
    return run_invoke("provision-all", "--slots", str(SLOT), *args, env=env, timeout=300)


def main_pid(box, ptype: str = "web") -> int:
    """The PID run-process recorded for the slot's main `ptype` instance."""
    pid_file = box.hosts[0].root / f"srv/staging/{IDENTIFIER}/shared/tmp/current-{ptype}.pid"
    return int(pid_file.read_text().split()[0])


def environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().partition("=")[::2] for item in raw if item)


def probes(box) -> list[Probe]:
    inventory = load_inventory(box.inventory_path)
    slot = inventory.slots[SLOT]
    host = inventory.host_of(slot)
    return [Probe(host, slot), Probe(host, slot, path="/airflow/health")]


def reloads_of(result) -> list[dict]:
    report = json.loads(result.stdout)
    return [r for h in report["hosts"] for r in h["reloads"]]


@pytest.fixture(scope="module")
def box(sandbox, provisioned):
    first = deploy(sandbox, "main", SLOT)
    assert first.returncode == 0, first.stdout + first.stderr
    yield sandbox
    # The slot as the sandbox's own inventory has it, for every later test's provision-all
    # (the next module to use the slot releases it itself: tests/sandbox/slots.py).
    back = provision(sandbox, None)
    assert back.returncode == 0, back.stdout + back.stderr


def test_a_changed_env_goes_live_through_the_hand_over_dropping_nothing(box, tmp_path):
    changed = with_app_env(box, tmp_path, "two")
    check = provision(box, changed, "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{IDENTIFIER}: would hand over (env app.env)" in check.stdout
    before = main_pid(box)
    watches = probes(box)
    for watch in watches:
        watch.__enter__()
    result = provision(box, changed, "--json")
    for watch in watches:
        watch.stop(after=2)
    assert result.returncode == 0, result.stdout + result.stderr
    for watch in watches:
        assert watch.failed == 0, (watch.path, watch.counts())
        assert len(watch.answers) > 50
    assert set(watches[0].answers) == {commit_of(box, "main")}
    (reload,) = reloads_of(result)
    assert reload["slot"] == IDENTIFIER and reload["how"] == "hand-over" and reload["ok"]
    assert reload["down_seconds"] is None
    after = main_pid(box)
    assert after != before
    assert environment(after)[MARK] == "two"
    assert environment(main_pid(box, "scheduler"))[MARK] == "two"
    # Converged: a second run changes nothing and restarts nothing.
    again = provision(box, changed, "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["changed"] == 0
    assert reloads_of(again) == []
    assert main_pid(box) == after
    assert not (box.hosts[0].root / "srv/staging/.staging-ops-pending.json").exists()


def test_an_env_that_breaks_the_app_fails_the_slot_and_the_old_processes_keep_serving(
    box, tmp_path
):
    good = with_app_env(box, tmp_path, "good")
    assert provision(box, good).returncode == 0
    before = main_pid(box)
    # Python cannot start without its standard library: every process of the slot would die.
    broken = tmp_path / "broken" / "inventory.toml"
    broken.parent.mkdir()
    broken.write_text(good.read_text() + 'PYTHONHOME = "/nonexistent"\n')
    watches = probes(box)
    for watch in watches:
        watch.__enter__()
    result = provision(box, broken)
    for watch in watches:
        watch.stop(after=2)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert re.search(rf"{IDENTIFIER}: candidate (start|verify) failed: ", out), out
    assert "nothing was restarted, the running processes keep serving" in out
    assert "Traceback" not in result.stderr
    for watch in watches:
        assert watch.failed == 0, (watch.path, watch.counts())
    assert main_pid(box) == before
    assert environment(before)[MARK] == "good"
    candidate = box.hosts[0].root / f"srv/staging/{IDENTIFIER}/candidate"
    assert not candidate.is_symlink()
    # Left for the next run: the marker names the slot until a reload succeeds.
    marker = box.hosts[0].root / "srv/staging/.staging-ops-pending.json"
    assert json.loads(marker.read_text())["reload"] == [IDENTIFIER]
    fixed = provision(box, good, "--json")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert [r["how"] for r in reloads_of(fixed)] == ["hand-over"]
    assert not marker.exists()
    assert environment(main_pid(box))[MARK] == "good"
    assert "PYTHONHOME" not in environment(main_pid(box))


def test_a_run_killed_during_the_hand_over_leaves_the_slot_to_the_next_run(box, tmp_path):
    changed = with_app_env(box, tmp_path, "four")
    killed = provision(box, changed, crash_at="deploy:during-handover")
    assert killed.returncode != 0
    marker = box.hosts[0].root / "srv/staging/.staging-ops-pending.json"
    assert json.loads(marker.read_text())["reload"] == [IDENTIFIER]
    watches = probes(box)
    for watch in watches:
        watch.__enter__()
    again = provision(box, changed, "--json")
    for watch in watches:
        watch.stop(after=2)
    assert again.returncode == 0, again.stdout + again.stderr
    assert [(r["how"], r["reason"]) for r in reloads_of(again)] == [
        ("hand-over", "left pending by an earlier run")
    ]
    for watch in watches:
        assert watch.failed == 0, (watch.path, watch.counts())
    assert not marker.exists()
    assert environment(main_pid(box))[MARK] == "four"
    assert not (box.hosts[0].root / f"srv/staging/{IDENTIFIER}/candidate").is_symlink()
    assert json.loads(provision(box, changed, "--json").stdout)["changed"] == 0


def test_a_live_release_never_verified_is_restarted_in_place_saying_how_long(box, tmp_path):
    release = os.readlink(box.hosts[0].root / f"srv/staging/{IDENTIFIER}/current")
    ok = box.hosts[0].root / f"srv/staging/{IDENTIFIER}" / release / ".ok"
    ok.unlink()
    try:
        changed = with_app_env(box, tmp_path, "three")
        check = provision(box, changed, "--check")
        assert f"{IDENTIFIER}: would restart in place (env app.env)" in check.stdout
        result = provision(box, changed, "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        (reload,) = reloads_of(result)
        assert reload["how"] == "restart in place" and reload["ok"]
        assert 0 < reload["down_seconds"] < 30
        assert environment(main_pid(box))[MARK] == "three"
    finally:
        ok.touch()
