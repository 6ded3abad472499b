"""The real application end to end on a sandbox of its own: the Campaign UI under gunicorn and
Apache Airflow, deployed with the shipped inventory's [app] commands and [app.env] unchanged.
Airflow 2 (no Procfile) in one slot while Airflow 3 (its Procfile and app.json) runs in
another; redeploy, rollback, each failure branch refused with one clear line while the previous
release keeps serving; verify and status truthful; nothing of a slot listens beyond loopback.

Slow (real venvs, real Airflow start-ups): one module, one sandbox, in order."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devtools import realapp
from devtools.campaign_repo import BROKEN_RELEASE_ERROR
from devtools.sample_repo import resolve
from staging_ops.health import public_version, slot_get, slot_session
from staging_ops.inventory import load_inventory
from tests.conftest import run_invoke, sandbox_ports

AIRFLOW2_SLOT, AIRFLOW3_SLOT = 3, 7
# Real venvs and Airflow start-ups: minutes, not the suite's default 300 s per test.
pytestmark = pytest.mark.timeout(1500)
# Real Airflow needs seconds to start, and a venv build minutes on a cold pip cache.
DEPLOY_TIMEOUT = 900


@pytest.fixture(scope="module")
def box():
    directory = Path(tempfile.mkdtemp(prefix="staging-ops-realapp-"))
    directory.chmod(0o755)
    try:
        real = realapp.up(directory, sandbox_ports(700))
        provisioned = invoke(real, "provision-all")
        assert provisioned.returncode == 0, provisioned.stdout + provisioned.stderr
        yield real
    finally:
        realapp.down(directory)


def invoke(box: realapp.RealApp, *args: str):
    return run_invoke(*args, env=box.env(), timeout=DEPLOY_TIMEOUT)


def deploy(box, slot: int, branch: str):
    return invoke(box, "deploy", "--slot", str(slot), "--branch", branch, "--task", f"JA-{slot}")


def served(box, slot: int) -> str | None:
    inventory = load_inventory(box.inventory_path)
    answer = public_version(inventory.hosts["h1"], inventory.slots[slot])
    return answer["commit"] if answer else None


def airflow_health(box, slot: int) -> dict:
    """Airflow's health JSON through nginx, at Airflow 2's path or Airflow 3's."""
    inventory = load_inventory(box.inventory_path)
    host, s = inventory.hosts["h1"], inventory.slots[slot]
    response = slot_get(host, s, "/airflow/health")
    if response.status_code == 404:
        response = slot_get(host, s, "/airflow/api/v2/monitor/health")
    assert response.status_code == 200, response.text
    return response.json()


def ok_deploy(box, slot: int, branch: str) -> str:
    result = deploy(box, slot, branch)
    assert result.returncode == 0, result.stdout + result.stderr
    commit = resolve(box.repo_path, branch)
    assert served(box, slot) == commit
    return result.stdout


def refused(box, slot: int, branch: str, *expected: str) -> str:
    """A failure branch: exit 1, one line (then the failing unit's log lines), the previous
    release still serving, verify still 0."""
    before = served(box, slot)
    result = deploy(box, slot, branch)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith(f"error: staging-{slot}: "), result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    assert served(box, slot) == before
    checked = invoke(box, "verify", "--slot", str(slot))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return result.stderr


def test_airflow_2_with_the_shipped_inventory_beside_airflow_3_with_its_procfile(box):
    first = ok_deploy(box, AIRFLOW2_SLOT, "main")
    assert "venv built" in first
    # pip says nothing for tens of seconds: the deploy does, every few seconds.
    assert "export + venv: building the venv" in first, first
    health = airflow_health(box, AIRFLOW2_SLOT)
    assert health["metadatabase"]["status"] == "healthy"
    assert health["scheduler"]["status"] == "healthy" or _eventually_healthy(box, AIRFLOW2_SLOT)

    three = ok_deploy(box, AIRFLOW3_SLOT, "airflow3")
    assert "(Procfile: web, airflow, scheduler, dag-processor)" in three
    assert _eventually_healthy(box, AIRFLOW3_SLOT, ("scheduler", "dag_processor"))
    # Slot 3 stayed on Airflow 2 meanwhile.
    assert served(box, AIRFLOW2_SLOT) == resolve(box.repo_path, "main")
    for slot in (AIRFLOW2_SLOT, AIRFLOW3_SLOT):
        checked = invoke(box, "verify", "--slot", str(slot))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        row = _status_row(box, slot)
        assert row["ui"] == "up" and row["airflow"] == "up", row


def _login(box, slot: int) -> dict:
    shown = invoke(box, "airflow-login", "--slot", str(slot), "--json")
    assert shown.returncode == 0, shown.stderr
    login = json.loads(shown.stdout)
    assert login["url"].endswith(f"staging-{slot}.justapply.net:{box.hosts[0].https_port}/airflow/")
    assert login["user"] == "admin" and len(login["password"]) >= 20
    return login


def test_an_operator_signs_in_to_each_slots_airflow_with_its_own_admin(box):
    inventory = load_inventory(box.inventory_path)
    host = inventory.hosts["h1"]
    # Airflow 2 (FAB): the login form, through nginx, with the slot's admin.
    two = _login(box, AIRFLOW2_SLOT)
    base = f"https://{host.address}:{host.https_port}/airflow"
    name = inventory.slots[AIRFLOW2_SLOT].subdomain
    # A browser's form post: its referrer is the login page (Flask-WTF checks it over https).
    headers = {"Host": name, "Referer": f"https://{name}/airflow/login/"}

    def sign_in(password: str):
        session = slot_session(inventory.slots[AIRFLOW2_SLOT])
        form = session.get(f"{base}/login/", headers=headers, verify=str(host.tls_ca), timeout=30)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.text)
        assert form.status_code == 200 and token, form.text[:300]
        return session.post(
            f"{base}/login/",
            data={"csrf_token": token.group(1), "username": "admin", "password": password},
            headers=headers,
            verify=str(host.tls_ca),
            allow_redirects=False,
            timeout=30,
        )

    signed = sign_in(two["password"])
    assert signed.status_code == 302, signed.text[:300]
    assert "/login" not in signed.headers["Location"]
    wrong = sign_in("not-it")
    assert wrong.status_code != 302 or "/login" in wrong.headers.get("Location", "")
    # Airflow 3 (simple auth manager): a token for the slot's admin, none for a wrong password.
    three = _login(box, AIRFLOW3_SLOT)
    assert three["password"] != two["password"]
    slot = inventory.slots[AIRFLOW3_SLOT]
    for password, expected in ((three["password"], 201), ("not-it", 401)):
        answer = slot_session(slot).post(
            f"https://{host.address}:{host.https_port}/airflow/auth/token",
            json={"username": "admin", "password": password},
            headers={"Host": slot.subdomain},
            verify=str(host.tls_ca),
            timeout=30,
        )
        assert answer.status_code == expected, answer.text[:300]
    passwords = box.hosts[0].root / (
        f"srv/staging/staging-{AIRFLOW3_SLOT}/shared/airflow/simple_auth_manager_passwords.json"
    )
    assert passwords.stat().st_mode & 0o777 == 0o600


def test_each_slot_keeps_airflow_to_itself_and_to_loopback(box):
    root = box.hosts[0].root / "srv/staging"
    for slot in (AIRFLOW2_SLOT, AIRFLOW3_SLOT):
        shared = root / f"staging-{slot}" / "shared"
        # One airflow.cfg per slot, written by the release phase into the slot's AIRFLOW_HOME.
        assert (shared / "airflow" / "airflow.cfg").is_file()
    assert not Path("/tmp/airflow").exists() or not any(Path("/tmp/airflow").iterdir())  # noqa: S108
    listening = subprocess.run(
        ["ss", "-ltnpH"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    ours = _pids_of_slot_units(box)
    for line in listening:
        pids = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if pids & ours:
            local = line.split()[3]
            assert local.startswith("127.0.0.1:"), line


# Each slot's branch to redeploy, and Airflow's health path through nginx.
REDEPLOY = {AIRFLOW2_SLOT: "feat-x", AIRFLOW3_SLOT: "airflow3"}
HEALTH = {AIRFLOW2_SLOT: "/airflow/health", AIRFLOW3_SLOT: "/airflow/api/v2/monitor/health"}
AFTER = 10  # seconds the probes go on after each run (a late failure of what serves)


def _probed(box, runs: dict[int, list[str]]) -> tuple[dict[str, int], list]:
    """Runs each slot's command at once (a thread each) under a probe of `/` and of Airflow
    through nginx on every slot, and for AFTER seconds after; the failed requests per probe,
    and the runs' results."""
    from concurrent.futures import ThreadPoolExecutor

    from devtools.probe import Probe

    inventory = load_inventory(box.inventory_path)
    host = inventory.hosts["h1"]
    probes = {
        f"{what} of staging-{slot}": Probe(host, inventory.slots[slot], **extra)
        for slot in (AIRFLOW2_SLOT, AIRFLOW3_SLOT)
        for what, extra in (("/", {}), ("/airflow", {"path": HEALTH[slot]}))
    }
    for probe in probes.values():
        probe.__enter__()
    try:
        with ThreadPoolExecutor(len(runs)) as pool:
            results = list(pool.map(lambda args: invoke(box, *args), runs.values()))
        for result in results:
            assert result.returncode == 0, result.stdout + result.stderr
    finally:
        time.sleep(AFTER)
        for probe in probes.values():
            probe.stop(after=0)
    assert all(probe.answers for probe in probes.values())
    failed = {name: sum(a.startswith("failed") for a in p.answers) for name, p in probes.items()}
    return failed, results


def test_redeploy_rollback_and_a_provision_all_env_change_fail_no_request(box):
    """Both slots at once (Airflow 2 and 3), under probes of `/` and `/airflow` through nginx
    during each run and for 10 s after: a redeploy, a rollback, and a provision-all that
    changes every process's environment (handed over, not restarted in place): 0 failed."""
    redeploys = {
        slot: ["deploy", "--slot", str(slot), "--branch", branch, "--task", f"JA-{slot}"]
        for slot, branch in REDEPLOY.items()
    }
    failed, _ = _probed(box, redeploys)
    assert set(failed.values()) == {0}, failed
    rollbacks = {
        slot: ["rollback", "--slot", str(slot), "--task", f"JA-{slot}"] for slot in REDEPLOY
    }
    failed, _ = _probed(box, rollbacks)
    assert set(failed.values()) == {0}, failed
    assert served(box, AIRFLOW2_SLOT) == resolve(box.repo_path, "main")
    assert airflow_health(box, AIRFLOW2_SLOT)["metadatabase"]["status"] == "healthy"

    from devtools.sandbox.processes import unit_pids

    def web_pids() -> dict[str, int]:
        units = [f"job-search-ui@staging-{slot}" for slot in REDEPLOY]
        return {unit: unit_pids(box.hosts[0])[unit] for unit in units}

    before = web_pids()
    text = box.inventory_path.read_text()
    box.inventory_path.write_text(
        text.replace("[app.env]\n", '[app.env]\nCAMPAIGN_PROBE = "on"\n', 1)
    )
    failed, (provisioned,) = _probed(box, {0: ["provision-all", "--json"]})
    assert set(failed.values()) == {0}, failed
    # gunicorn and Airflow rewrite their environment's memory (setproctitle): what shows the
    # new environment live is the slots' env file and their processes, handed over anew.
    reloads = json.loads(provisioned.stdout)["hosts"][0]["reloads"]
    assert sorted((r["slot"], r["how"], r["ok"]) for r in reloads) == [
        (f"staging-{slot}", "hand-over", True) for slot in sorted(REDEPLOY)
    ], reloads
    after = web_pids()
    assert all(after[unit] != pid for unit, pid in before.items()), (before, after)
    for slot in REDEPLOY:
        env_file = box.hosts[0].root / f"srv/staging/staging-{slot}/shared/app.env"
        assert "CAMPAIGN_PROBE" in env_file.read_text()
    again = invoke(box, "provision-all")
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout


@pytest.mark.parametrize(
    ("slot", "branch", "expected"),
    [
        (AIRFLOW2_SLOT, "bad-procfile", ("fetch failed: Procfile line 6: not `type: command`",)),
        (AIRFLOW2_SLOT, "broken-release", ("migrate failed", BROKEN_RELEASE_ERROR)),
        (AIRFLOW2_SLOT, "broken-airflow", ("candidate verify failed", "airflow-webserver")),
        (AIRFLOW2_SLOT, "broken-web", ("candidate verify failed", "/api/version")),
        (
            AIRFLOW2_SLOT,
            "broken-scheduler",
            ("candidate stop + scheduler restart failed", "airflow-scheduler@staging-3"),
        ),
        (
            AIRFLOW3_SLOT,
            "crashloop-dag-processor",
            ("candidate stop + scheduler restart failed", "worker@staging-7:dag-processor"),
        ),
    ],
)
def test_a_failure_branch_is_refused_and_the_previous_release_keeps_serving(
    box, slot, branch, expected
):
    # A web that never listens spends the whole verify budget (60 s, for Airflow under load):
    # 15 s for that branch alone, where only its web is waited on, saves most of a minute.
    with verify_budget(box, BUDGETS.get(branch)):
        refused(box, slot, branch, *expected)


BUDGETS = {"broken-web": 15}


@contextmanager
def verify_budget(box, seconds: int | None) -> Iterator[None]:
    """The inventory's [app] verify_timeout as `seconds` meanwhile (None: unchanged)."""
    if seconds is None:
        yield
        return
    text = box.inventory_path.read_text()
    changed, count = re.subn(r"(?m)^verify_timeout = .*$", f"verify_timeout = {seconds}", text)
    assert count == 1, "one [app] verify_timeout"
    box.inventory_path.write_text(changed)
    try:
        yield
    finally:
        box.inventory_path.write_text(text)


def _status_row(box, slot: int) -> dict:
    result = invoke(box, "status", "--json")
    assert result.returncode == 0, result.stderr
    return next(r for r in json.loads(result.stdout) if r["slot"] == slot)


def _eventually_healthy(box, slot: int, components=("scheduler",), timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = airflow_health(box, slot)
        if all((health.get(c) or {}).get("status") == "healthy" for c in components):
            return True
        time.sleep(1)
    return False


def _pids_of_slot_units(box) -> set[int]:
    """Every process of the sandbox's slot units: their main PIDs and all below them."""
    from devtools.sandbox.processes import unit_pids
    from devtools.sandbox.stopping import descendants

    found: set[int] = set()
    for pid in unit_pids(box.hosts[0]).values():
        found |= {pid, *descendants(pid)}
    return found
