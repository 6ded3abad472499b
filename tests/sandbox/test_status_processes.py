"""Each process of a slot in `status`, `verify` and the dashboard, on the real sandbox with the
fast sample app: a Procfile's own worker shows beside web, airflow and the scheduler; a worker
killed with SIGKILL is down in status (--json and the table), verify exits 1 with one line
naming it and its unit, and the dashboard's page shows it; an Airflow health answer that is a
200 but says the scheduler is unhealthy makes the scheduler unhealthy everywhere."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from playwright.sync_api import expect

from devtools.sample_repo import push_branch
from devtools.sandbox.processes import unit_pids
from tests.conftest import run_invoke
from tests.sandbox.test_dashboard import browser  # noqa: F401  (the fixture: Debian's Chromium)
from tests.sandbox.test_drift import dashboard_app
from tests.sandbox.test_processes import PROCFILE  # the sample app with a `heartbeat` worker

SLOT = 3  # no other test of the shared sandbox deploys to it
TASK = "JA-303"
HEARTBEAT_UNIT = "job-search-worker@staging-3:heartbeat.service"
# An `airflow` process that answers as Airflow 2 does while its scheduler has stopped
# heart-beating: 200, a healthy metadatabase, an unhealthy scheduler.
SICK_AIRFLOW = """\
import http.server, json, os

BODY = json.dumps({
    "metadatabase": {"status": "healthy"},
    "scheduler": {"status": "unhealthy", "latest_scheduler_heartbeat": None},
    "triggerer": {"status": None, "latest_triggerer_heartbeat": None},
}).encode()


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/airflow/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(BODY)


http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Health).serve_forever()
"""


def deploy(box, branch: str):
    return run_invoke(
        "deploy", "--slot", str(SLOT), "--branch", branch, "--task", TASK, env=box.env()
    )


def status_row(box) -> dict:
    result = run_invoke("status", "--json", env=box.env(), timeout=30)
    assert result.returncode == 0, result.stderr
    return next(r for r in json.loads(result.stdout) if r["slot"] == SLOT)


def status_line(box) -> tuple[str, str]:
    """The table's header and the slot's line."""
    result = run_invoke("status", env=box.env(), timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return lines[0], next(line for line in lines if line.startswith(f"{SLOT} "))


def verify(box):
    return run_invoke("verify", "--slot", str(SLOT), env=box.env(), timeout=30)


def states(row: dict) -> dict[str, str]:
    return {ptype: judged["state"] for ptype, judged in row["processes"].items()}


@pytest.fixture(scope="module")
def box(sandbox, provisioned):
    push_branch(sandbox.repo_path, "procs-status", {"Procfile": PROCFILE})
    sick = PROCFILE.replace("python app.py airflow-webserver", "python sick_airflow.py")
    push_branch(
        sandbox.repo_path, "procs-sick", {"Procfile": sick, "sick_airflow.py": SICK_AIRFLOW}
    )
    return sandbox


def test_a_killed_worker_is_down_in_status_verify_and_the_dashboard(box, browser):  # noqa: F811
    done = deploy(box, "procs-status")
    assert done.returncode == 0, done.stdout + done.stderr

    row = status_row(box)
    assert states(row) == {"web": "up", "airflow": "up", "scheduler": "up", "heartbeat": "up"}
    assert row["processes"]["heartbeat"] == {
        "state": "up", "unit": HEARTBEAT_UNIT, "problem": None
    }  # fmt: skip
    assert row["processes"]["scheduler"]["unit"] == "job-search-airflow-scheduler@staging-3.service"
    # The fields other readers rely on are still there.
    assert (row["ui"], row["airflow"], row["drift"]["state"]) == ("up", "up", "ok")
    header, line = status_line(box)
    assert "PROCESSES" in header.split()
    assert "web✓ airflow✓ heartbeat✓ scheduler✓" in line
    assert line.rstrip().endswith(" no")  # drift stays the last column
    ok = verify(box)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "web, airflow, heartbeat, scheduler up and healthy" in ok.stdout

    os.kill(unit_pids(box.hosts[0])[HEARTBEAT_UNIT.removesuffix(".service")], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (row := status_row(box))["processes"]["heartbeat"]["state"] == "up":
        assert time.monotonic() < deadline, "status never saw the worker die"
        time.sleep(0.2)
    assert states(row) == {"web": "up", "airflow": "up", "scheduler": "up", "heartbeat": "down"}
    assert row["processes"]["heartbeat"]["problem"].startswith("systemd: failed")
    assert "web✓ airflow✓ heartbeat✗ scheduler✓" in status_line(box)[1]

    failed = verify(box)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert failed.stdout.splitlines() == [
        f"heartbeat ({HEARTBEAT_UNIT}) is down (systemd: failed (failed))"
    ], failed.stdout
    assert "Traceback" not in failed.stderr

    with dashboard_app(box) as (page_url, token):
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(page_url)
            page.get_by_label("Admin token (JWT)").fill(token)
            page.get_by_role("button", name="Sign in").click()
            cell = page.locator(f'#slots tr[data-slot="{SLOT}"] td[data-label="Health"]')
            processes = cell.get_by_role("group", name="Processes")
            expect(processes).to_contain_text("heartbeat down", timeout=20_000)
            for ptype in ("web", "airflow", "scheduler"):
                expect(processes).to_contain_text(f"{ptype} up")
            badge = processes.locator('[data-process="heartbeat"]')
            expect(badge).to_have_attribute("title", f"heartbeat ({HEARTBEAT_UNIT}) is down: "
                                            "systemd: failed (failed)")  # fmt: skip
        finally:
            context.close()

    # A deploy brings the worker back: verify is content again.
    again = deploy(box, "procs-status")
    assert again.returncode == 0, again.stdout + again.stderr
    assert states(status_row(box))["heartbeat"] == "up"
    assert verify(box).returncode == 0


def test_a_200_that_says_the_scheduler_is_unhealthy_is_an_unhealthy_scheduler(box):
    done = deploy(box, "procs-sick")
    assert done.returncode == 0, done.stdout + done.stderr

    row = status_row(box)
    # The health answer is a 200 (so the old Airflow column said "up"), its JSON is not.
    assert row["airflow"] == "up"
    assert states(row) == {
        "web": "up", "airflow": "up", "scheduler": "unhealthy", "heartbeat": "up"
    }  # fmt: skip
    assert row["processes"]["scheduler"]["problem"] == "/airflow/health: scheduler is unhealthy"
    assert "scheduler:unhealthy" in status_line(box)[1]

    failed = verify(box)
    assert failed.returncode == 1
    assert failed.stdout.splitlines() == [
        "scheduler (job-search-airflow-scheduler@staging-3.service) is unhealthy "
        "(/airflow/health: scheduler is unhealthy)"
    ], failed.stdout
