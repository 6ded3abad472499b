"""The real application on a real droplet that reaches no package index: the Campaign UI under
gunicorn and Apache Airflow, deployed by the shipped inventory's [app] and [app.env] (plus
`pip_find_links`) onto a fresh Debian 12 under real systemd, its venv built by pip offline from
a wheelhouse this machine prepared (devtools/wheelhouse.py) and bind-mounted read-only.

In file order on one droplet: provision-all from nothing; Airflow 2 (`main`, no Procfile)
serves its commit and a healthy Airflow through nginx, verify passes, only 22/80/443 listen
beyond loopback; a redeploy (`feat-x`) reuses the venv; Airflow 3 (`airflow3`, its Procfile)
in another slot, whose dag-processor runs as the worker template's instance
`job-search-worker@staging-N:dag-processor`, which only real systemd can show."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import devtools.droplet as droplet_mod
from devtools.campaign_repo import AIRFLOW3_BRANCH, DEFAULT_SOURCE, build_campaign_repo
from devtools.realapp import shipped_app
from devtools.wheelhouse import combine, ensure_wheelhouse
from tests.conftest import run_invoke
from tests.droplet.conftest import droplet_dir, require_droplet_support

AIRFLOW2_SLOT, AIRFLOW3_SLOT = 4, 7
WHEELHOUSE = "/srv/wheelhouse"
# A first provision (~40 s of apt), venv builds from the wheelhouse (~25 s each on a quiet
# machine, minutes on a loaded one), real Airflow start-ups.
SLOW = 900
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def real() -> Iterator[droplet_mod.Droplet]:
    require_droplet_support()
    # Built once per machine (cached under /var/cache/staging-ops/wheelhouse), both Airflows:
    # find-links is one directory for every branch the droplet deploys.
    # Side by side when cold (each is mostly waiting on downloads).
    requirements = [
        DEFAULT_SOURCE / "requirements.txt",
        DEFAULT_SOURCE / "variants" / AIRFLOW3_BRANCH / "requirements.txt",
    ]
    with ThreadPoolExecutor(2) as pool:
        houses = [house for house, _ in pool.map(ensure_wheelhouse, requirements)]
    outside = Path(tempfile.mkdtemp(prefix="staging-ops-realapp-wheels-"))
    outside.chmod(0o755)
    directory = droplet_dir("staging-ops-realapp-droplet-")
    try:
        combine(houses, outside / "wheels")
        repo = outside / "campaign-app.git"
        build_campaign_repo(repo)
        droplet = droplet_mod.up(
            directory, name="real", repo=repo, binds={outside / "wheels": WHEELHOUSE}
        )
        _write_real_inventory(droplet)
        yield droplet
    finally:
        droplet_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(outside, ignore_errors=True)


def _write_real_inventory(droplet: droplet_mod.Droplet) -> None:
    """The droplet's inventory with the shipped [app] and [app.env] for the campaign repo, and
    pip offline from the mounted wheelhouse."""
    text = droplet.inventory_path.read_text()
    start, end = text.index("[app]\n"), text.index("[hosts.")
    app = shipped_app(droplet.repo_url, verify_timeout=300).replace(
        "[app]\n", f'[app]\npip_find_links = "{WHEELHOUSE}"\n', 1
    )
    droplet.inventory_path.write_text(text[:start] + app + text[end:])


def invoke(droplet: droplet_mod.Droplet, *args: str) -> subprocess.CompletedProcess:
    return run_invoke(*args, env=droplet.env(), timeout=SLOW)


def inside(droplet: droplet_mod.Droplet, command: str) -> str:
    result = droplet_mod.run(droplet, command)
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result.stdout


def commit_of(droplet: droplet_mod.Droplet, branch: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(droplet.repo_path), "rev-parse", f"refs/heads/{branch}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def through_nginx(droplet: droplet_mod.Droplet, slot: int, path: str) -> tuple[int, str]:
    """(status, body) of `path` on the slot's name through the droplet's nginx, as a browser
    reaches it (curl --resolve: the slot's name as SNI and Host; -k: the placeholder
    certificate is self-signed)."""
    name = f"staging-{slot}.justapply.net"
    result = subprocess.run(
        [
            "curl", "-sk", "--noproxy", "*", "--max-time", "10", "-w", "\n%{http_code}",
            "--resolve", f"{name}:443:{droplet.address}", f"https://{name}{path}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    body, _, status = result.stdout.rpartition("\n")
    return int(status or 0), body


def served_commit(droplet: droplet_mod.Droplet, slot: int) -> str | None:
    status, body = through_nginx(droplet, slot, "/api/version")
    return json.loads(body).get("commit") if status == 200 else None


def healthy_airflow(
    droplet: droplet_mod.Droplet, slot: int, path: str, components: tuple[str, ...]
) -> dict:
    """Airflow's health JSON through nginx once every component is healthy (its 200 says
    nothing: Airflow answers 200 with an unhealthy scheduler); fails after 90 s."""
    deadline = time.monotonic() + 90
    while True:
        status, body = through_nginx(droplet, slot, path)
        assert status == 200, (status, body)
        health = json.loads(body)
        if all((health.get(c) or {}).get("status") == "healthy" for c in components):
            return health
        assert time.monotonic() < deadline, health
        time.sleep(1)


def public_ports(droplet: droplet_mod.Droplet) -> set[int]:
    """The ports anything in the droplet listens on beyond loopback."""
    found = set()
    for line in inside(droplet, "ss -ltnH").splitlines():
        address, _, port = line.split()[3].rpartition(":")
        if address.strip("[]") not in ("127.0.0.1", "::1"):
            found.add(int(port))
    return found


def deploy(droplet: droplet_mod.Droplet, slot: int, branch: str) -> str:
    started = time.monotonic()
    result = invoke(
        droplet, "deploy", "--slot", str(slot), "--branch", branch, "--task", f"JA-{slot}"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    venv = next(
        (line.strip() for line in result.stdout.splitlines() if "export + venv" in line), ""
    )
    print(f"deploy {branch} to slot {slot}: {time.monotonic() - started:.1f} s ({venv})")
    assert served_commit(droplet, slot) == commit_of(droplet, branch)
    return result.stdout


@pytest.fixture(scope="module")
def provisioned(real) -> None:
    # No route off the bridge: the droplet cannot reach any package index.
    assert "default" not in inside(real, "ip route")
    result = invoke(real, "provision-all")
    assert result.returncode == 0, result.stdout + result.stderr


def test_airflow_2_with_the_shipped_inventory_builds_offline_and_serves(real, provisioned):
    out = deploy(real, AIRFLOW2_SLOT, "main")
    assert "venv built" in out, out
    health = healthy_airflow(real, AIRFLOW2_SLOT, "/airflow/health", ("metadatabase", "scheduler"))
    assert health["metadatabase"]["status"] == "healthy"
    # The venv came from the wheelhouse: pip had nothing else to read.
    pip = inside(real, f"ls /srv/staging/staging-{AIRFLOW2_SLOT}/current/.venv/bin/")
    assert "airflow" in pip.split() and "gunicorn" in pip.split()
    checked = invoke(real, "verify", "--slot", str(AIRFLOW2_SLOT))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (
        inside(
            real, f"systemctl is-active job-search-airflow-scheduler@staging-{AIRFLOW2_SLOT}"
        ).strip()
        == "active"
    )
    assert public_ports(real) == {22, 80, 443}


def test_a_redeploy_reuses_the_venv_and_serves_the_new_commit(real, provisioned):
    out = deploy(real, AIRFLOW2_SLOT, "feat-x")
    assert "venv reused" in out, out
    status, body = through_nginx(real, AIRFLOW2_SLOT, "/")
    assert status == 200 and "Feature X" in body
    healthy_airflow(real, AIRFLOW2_SLOT, "/airflow/health", ("metadatabase", "scheduler"))
    checked = invoke(real, "verify", "--slot", str(AIRFLOW2_SLOT))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_airflow_3_beside_it_runs_its_dag_processor_as_a_worker_instance(real, provisioned):
    out = deploy(real, AIRFLOW3_SLOT, AIRFLOW3_BRANCH)
    assert "(Procfile: web, airflow, scheduler, dag-processor)" in out, out
    healthy_airflow(
        real,
        AIRFLOW3_SLOT,
        "/airflow/api/v2/monitor/health",
        ("metadatabase", "scheduler", "dag_processor"),
    )
    # Real systemd's instance name with a ':' in it (the template's %i: "staging-7:dag-processor").
    unit = f"job-search-worker@staging-{AIRFLOW3_SLOT}:dag-processor.service"
    assert inside(real, f"systemctl is-active {unit}").strip() == "active"
    assert inside(real, f"systemctl is-enabled {unit}").strip() == "enabled"
    for slot in (AIRFLOW2_SLOT, AIRFLOW3_SLOT):
        checked = invoke(real, "verify", "--slot", str(slot))
        assert checked.returncode == 0, checked.stdout + checked.stderr
    # Slot 4 stayed on Airflow 2 meanwhile, and still nothing listens beyond loopback.
    assert served_commit(real, AIRFLOW2_SLOT) == commit_of(real, "feat-x")
    assert public_ports(real) == {22, 80, 443}
