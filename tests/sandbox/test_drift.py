"""Drift on the real sandbox (#15.1): `current` moved by hand on the droplet's file system, then
the UI restarted on the moved link, then put back; each time `invoke status` (table and
--json), `invoke verify` and the dashboard's board say which of the registry, `current` and
/api/version disagree. A release live but never verified (a deploy killed after its switch,
#15.3) is "unverified" in all of them alike, until a rollback. A host that cannot be reached
is "unknown" per slot, not a traceback and not a hang."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from staging_ops import remote
from staging_ops.inventory import load_inventory
from staging_ops.render import slot_units
from tests.conftest import inventory_variant, run_invoke
from tests.sandbox.dashboard_pages import dashboard_app, health_cell
from tests.sandbox.deploying import commit_of, deploy, served
from tests.sandbox.slots import slot_for

SLOT = slot_for(__name__)


def slot_dir(box) -> Path:
    return box.hosts[0].root / f"srv/staging/staging-{SLOT}"


def point_current_at(box, release: str) -> None:
    """What an operator's `ln -sfn` on the droplet does (atomically, as the deploy does)."""
    tmp = slot_dir(box) / ".current.by-hand"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(f"releases/{release}")
    tmp.rename(slot_dir(box) / "current")


def restart_ui(box) -> None:
    inventory = load_inventory(box.inventory_path)
    slot = inventory.slots[SLOT]
    session = remote.connect(inventory.host_of(slot))
    try:
        session.run(f"systemctl restart {slot_units(inventory.app, slot)[0]}")
    finally:
        session.close()


def wait_serving(box, commit: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while served(box, SLOT) != commit:
        assert time.monotonic() < deadline, f"slot {SLOT} never served {commit}"
        time.sleep(0.1)


def status_row(box, inventory: Path | None = None) -> dict:
    env = {**box.env(), **({"STAGING_INVENTORY": str(inventory)} if inventory else {})}
    result = run_invoke("status", "--json", env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    return next(r for r in json.loads(result.stdout) if r["slot"] == SLOT)


def status_table_line(box) -> str:
    result = run_invoke("status", env=box.env(), timeout=30)
    assert result.returncode == 0, result.stderr
    return next(line for line in result.stdout.splitlines() if line.startswith(f"{SLOT} "))


def board_drift(box) -> dict | None:
    """The slot's drift as board.json gives it once the first health round (HTTPS probes and
    the droplet's command) is in."""
    with dashboard_app(box) as (page_url, token):
        deadline = time.monotonic() + 20
        while True:
            board = requests.get(
                f"{page_url}/board.json", headers={"Authorization": f"Bearer {token}"}, timeout=10
            ).json()
            if board["health_checked_at"]:
                return next(s for s in board["slots"] if s["slot"] == SLOT)["drift"]
            assert time.monotonic() < deadline, "the dashboard never checked health"
            time.sleep(0.2)


def page_health_text(box, chromium) -> str:
    """The slot's Health cell as a browser shows it, once it carries the drift verdict."""
    with (
        dashboard_app(box) as (page_url, token),
        health_cell(chromium, page_url, token, SLOT) as cell,
    ):
        expect(cell).to_contain_text("UI up", timeout=20_000)
        return cell.inner_text()


CLEAN = {"state": "ok", "pairs": [], "unverified": None, "label": "no", "message": None}


def current_release(box) -> str:
    return (slot_dir(box) / "current").readlink().name


def assert_clean(box) -> None:
    """Nothing to say about the slot anywhere: status --json, the table, verify, the board."""
    assert status_row(box)["drift"] == CLEAN
    assert status_table_line(box).rstrip().endswith(" no")
    verify = run_invoke("verify", "--slot", str(SLOT), env=box.env(), timeout=30)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert board_drift(box) == CLEAN


@pytest.fixture(scope="module")
def releases(sandbox, provisioned) -> tuple[str, str]:
    """Two releases on the slot: feat-x's, then main's (live, verified and recorded)."""
    for branch in ("feat-x", "main"):
        result = deploy(sandbox, branch, SLOT)
        assert result.returncode == 0, result.stdout + result.stderr
    names = sorted(p.name for p in (slot_dir(sandbox) / "releases").iterdir())
    feat, main = names[-2], names[-1]
    assert feat.endswith(commit_of(sandbox, "feat-x")[:7])
    assert main.endswith(commit_of(sandbox, "main")[:7])
    return feat, main


def test_moved_current_then_restart_then_back(sandbox, releases, browser):
    box, (feat_release, main_release) = sandbox, releases
    main, feat = commit_of(box, "main"), commit_of(box, "feat-x")

    row = status_row(box)
    assert row["drift"] == CLEAN
    assert (row["live"]["release"], row["live"]["commit"]) == (main_release, main)
    assert row["served_commit"] == main
    assert run_invoke("verify", "--slot", str(SLOT), env=box.env()).returncode == 0

    try:
        # 1. `current` moved by hand; the running UI still serves the registry's commit.
        point_current_at(box, feat_release)
        row = status_row(box)
        assert row["drift"]["state"] == "drift"
        assert row["drift"]["pairs"] == [["registry", "current"], ["current", "served"]]
        assert (row["live"]["release"], row["live"]["commit"]) == (feat_release, feat)
        assert "registry≠current, current≠served" in status_table_line(box)
        verify = run_invoke("verify", "--slot", str(SLOT), env=box.env())
        assert verify.returncode == 1, verify.stdout + verify.stderr
        assert (
            f"drift: current points to {feat_release} ({feat[:12]}) but the registry records "
            f"{main[:12]}"
        ) in verify.stdout
        assert "Traceback" not in verify.stderr
        assert board_drift(box)["pairs"] == [["registry", "current"], ["current", "served"]]
        assert "drift registry≠current, current≠served" in page_health_text(box, browser)

        # 2. The UI restarted on the moved link: now it serves what nobody recorded.
        restart_ui(box)
        wait_serving(box, feat)
        row = status_row(box)
        assert row["ui"] == "up" and row["served_commit"] == feat
        assert row["drift"]["pairs"] == [["registry", "current"], ["registry", "served"]]
        verify = run_invoke("verify", "--slot", str(SLOT), "--json", env=box.env())
        assert verify.returncode == 1
        checked = json.loads(verify.stdout)
        assert not checked["ok"]
        assert (
            f"/api/version serves {feat[:12]} but the registry records {main[:12]}"
            in (checked["problem"])
        )
        assert checked["live"]["release"] == feat_release
        assert board_drift(box)["pairs"] == [["registry", "current"], ["registry", "served"]]
    finally:
        # 3. Put back: no drift anywhere.
        point_current_at(box, main_release)
        restart_ui(box)
        wait_serving(box, main)
    assert_clean(box)
    text = page_health_text(box, browser)
    assert "drift" not in text and "unverified" not in text


def test_a_live_release_never_verified_is_said_everywhere(sandbox, releases):
    # `current` on a release whose verify never passed (no .ok, no line in deploys.log),
    # serving the recorded commit, so nothing drifts. Only its .release-env matters to the
    # droplet's side of the check.
    box, (_, main_release) = sandbox, releases
    unproven = f"{main_release}-unverified"
    copy = slot_dir(box) / "releases" / unproven
    copy.mkdir()
    shutil.copy2(slot_dir(box) / "releases" / main_release / ".release-env", copy)
    point_current_at(box, unproven)
    try:
        assert_unverified_only(box, unproven)
    finally:
        point_current_at(box, main_release)
        shutil.rmtree(copy)
    assert_clean(box)


def assert_unverified_only(box, release: str, chromium=None) -> None:
    """The same verdict, "unverified" and no pair, in status --json, the table, verify (exit
    1, with the command that restores a verified release) and the dashboard's data."""
    row = status_row(box)
    assert row["drift"]["state"] == "unverified"
    assert (row["drift"]["pairs"], row["drift"]["unverified"]) == ([], release)
    assert row["live"] == {**row["live"], "release": release, "verified": False}
    assert status_table_line(box).rstrip().endswith(" unverified")
    result = run_invoke("verify", "--slot", str(SLOT), env=box.env(), timeout=30)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"unverified: current points to {release}, never verified" in result.stdout
    assert f"`invoke rollback --slot {SLOT}` goes back to the last verified one" in result.stdout
    assert "drift:" not in result.stdout  # the same commit everywhere
    assert "Traceback" not in result.stderr
    assert board_drift(box) == row["drift"]
    if chromium is not None:
        text = page_health_text(box, chromium)
        assert "unverified" in text and "drift" not in text


def test_a_deploy_killed_after_its_switch_leaves_unverified_until_a_rollback(
    sandbox,
    releases,
    browser,
):
    # kill -9 at the crash point just after the switch: a redeploy of the recorded commit,
    # so the registry, `current` and /api/version agree and only the .ok is missing.
    box, (_, main_release) = sandbox, releases
    killed = deploy(box, "main", SLOT, env={"STAGING_OPS_CRASH_AT": "deploy:after-switch"})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    left = current_release(box)
    assert left != main_release and not (slot_dir(box) / "releases" / left / ".ok").exists()
    wait_serving(box, commit_of(box, "main"))
    assert_unverified_only(box, left, browser)

    roll_back(box, main_release)
    text = page_health_text(box, browser)
    assert "drift" not in text and "unverified" not in text

    # Killed at the same point deploying another commit: drift and unverified, side by side.
    killed = deploy(box, "feat-x", SLOT, env={"STAGING_OPS_CRASH_AT": "deploy:after-switch"})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    left = current_release(box)
    assert left.endswith(commit_of(box, "feat-x")[:7])
    row = status_row(box)
    assert (row["drift"]["state"], row["drift"]["unverified"]) == ("drift", left)
    assert ["registry", "current"] in row["drift"]["pairs"]
    assert row["drift"]["label"].endswith(", unverified")
    assert status_table_line(box).rstrip().endswith(row["drift"]["label"])
    result = run_invoke("verify", "--slot", str(SLOT), env=box.env(), timeout=30)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"drift: current points to {left}" in result.stdout
    assert f"unverified: current points to {left}, never verified" in result.stdout
    assert board_drift(box) == row["drift"]
    roll_back(box, main_release)


def roll_back(box, release: str) -> None:
    back = run_invoke("rollback", "--slot", str(SLOT), "--task", f"JA-{SLOT}", env=box.env())
    assert back.returncode == 0, back.stdout + back.stderr
    assert current_release(box) == release
    assert_clean(box)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never says anything (an SSH server that
    hangs before its banner)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("how", ["refused", "silent"])
def test_an_unreachable_host_is_unknown_per_slot(sandbox, releases, tmp_path, silent_port, how):
    box = sandbox
    ssh_port = box.hosts[0].ssh_port
    port = silent_port if how == "silent" else _closed_port()
    inventory = inventory_variant(box, tmp_path, (f"port = {ssh_port}\n", f"port = {port}\n"))
    env = {**box.env(), "STAGING_INVENTORY": str(inventory)}
    # A hang would be the timeout here (the probe gives up after 3 s), not a pass.
    result = run_invoke("status", "--json", env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r["drift"]["state"] for r in rows} == {"unknown"}
    row = next(r for r in rows if r["slot"] == SLOT)
    assert f"127.0.0.1:{port}" in row["live"]["error"]
    assert row["ui"] == "up"  # HTTPS still answers: only the droplet's side is unknown
    if how == "refused":  # the table reads the same rows; once is enough
        table = run_invoke("status", env=env, timeout=30)
        assert table.returncode == 0 and "Traceback" not in table.stderr
        # One line a slot after the header; status's closing line is about the integrations.
        lines = table.stdout.splitlines()[1:]
        slot_lines = [line for line in lines if not line.startswith("integrations:")]
        assert all(line.rstrip().endswith("unknown") for line in slot_lines), table.stdout
    verify = run_invoke("verify", "--slot", str(SLOT), env=env, timeout=30)
    assert verify.returncode == 1 and "Traceback" not in verify.stderr
    assert "drift unknown: the droplet's current release was not read" in verify.stdout


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
