"""Each process of a slot in `status`, `verify` and the dashboard, on the real sandbox with the
fast sample app: a Procfile's own worker shows beside web, airflow and the scheduler; a worker
killed with SIGKILL is down in status (--json and the table), verify exits 1 with one line
naming it and its unit, and the dashboard's page shows it; an Airflow health answer that is a
200 but says the scheduler is unhealthy makes the scheduler unhealthy everywhere; a release
whose scheduler never beats after its restart is refused by the deploy and rolled back."""

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
from tests.sandbox.dashboard_pages import dashboard_app, health_cell
from tests.sandbox.deploying import PROCFILE  # the sample app with a `heartbeat` worker
from tests.sandbox.slots import slot_for

SLOT = slot_for(__name__)
TASK = "JA-303"
HEARTBEAT_UNIT = f"job-search-worker@staging-{SLOT}:heartbeat.service"
# An `airflow` process that answers as Airflow 2 does: 200 and a healthy metadatabase; the
# scheduler healthy with a heartbeat of now until the slot's HOME holds SICK_MARK, then as
# while its scheduler has stopped heart-beating (unhealthy, no heartbeat). NEVER_BEATS: from
# the start, as a scheduler that never ran (the deploy's worker check refuses that release).
SICK_MARK = "scheduler-sick"
SICK_AIRFLOW = """\
import datetime, http.server, json, os

NEVER_BEATS = False


def body():
    sick = NEVER_BEATS or os.path.exists(os.path.join(os.environ["HOME"], "scheduler-sick"))
    beat = datetime.datetime.now(datetime.timezone.utc).isoformat()
    return json.dumps({
        "metadatabase": {"status": "healthy"},
        "scheduler": {
            "status": "unhealthy" if sick else "healthy",
            "latest_scheduler_heartbeat": None if sick else beat,
        },
        "triggerer": {"status": None, "latest_triggerer_heartbeat": None},
    }).encode()


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/airflow/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body())


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
    never = SICK_AIRFLOW.replace("NEVER_BEATS = False", "NEVER_BEATS = True")
    push_branch(
        sandbox.repo_path, "procs-never-beats", {"Procfile": sick, "sick_airflow.py": never}
    )
    return sandbox


def test_a_killed_worker_is_down_in_status_verify_and_the_dashboard(box, browser):
    done = deploy(box, "procs-status")
    assert done.returncode == 0, done.stdout + done.stderr

    row = status_row(box)
    assert states(row) == {"web": "up", "airflow": "up", "scheduler": "up", "heartbeat": "up"}
    assert row["processes"]["heartbeat"] == {
        "state": "up", "unit": HEARTBEAT_UNIT, "problem": None
    }  # fmt: skip
    assert (
        row["processes"]["scheduler"]["unit"]
        == f"job-search-airflow-scheduler@staging-{SLOT}.service"
    )
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

    with (
        dashboard_app(box) as (page_url, token),
        health_cell(browser, page_url, token, SLOT) as cell,
    ):
        processes = cell.get_by_role("group", name="Processes")
        expect(processes).to_contain_text("heartbeat down", timeout=20_000)
        for ptype in ("web", "airflow", "scheduler"):
            expect(processes).to_contain_text(f"{ptype} up")
        badge = processes.locator('[data-process="heartbeat"]')
        expect(badge).to_have_attribute("title", f"heartbeat ({HEARTBEAT_UNIT}) is down: "
                                        "systemd: failed (failed)")  # fmt: skip

    # A deploy brings the worker back: verify is content again.
    again = deploy(box, "procs-status")
    assert again.returncode == 0, again.stdout + again.stderr
    assert states(status_row(box))["heartbeat"] == "up"
    assert verify(box).returncode == 0


def test_a_200_that_says_the_scheduler_is_unhealthy_is_an_unhealthy_scheduler(box):
    done = deploy(box, "procs-sick")
    assert done.returncode == 0, done.stdout + done.stderr
    # The scheduler beat after its restart (the deploy checked); now it stops.
    home = box.hosts[0].root / f"srv/staging/staging-{SLOT}/shared/home"
    (home / SICK_MARK).touch()

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
        f"scheduler (job-search-airflow-scheduler@staging-{SLOT}.service) is unhealthy "
        "(/airflow/health: scheduler is unhealthy)"
    ], failed.stdout
    (home / SICK_MARK).unlink()


def test_a_release_whose_scheduler_never_beats_is_rolled_back(box):
    """Its unit stays up, its Airflow answers 200: only the health answer's heartbeat says the
    scheduler never ran since its restart (deploy/heartbeat.py)."""
    good = deploy(box, "procs-status")
    assert good.returncode == 0, good.stdout + good.stderr
    failed = deploy(box, "procs-never-beats")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert (
        f"candidate stop + scheduler restart failed: job-search-airflow-scheduler@staging-{SLOT}."
        "service: scheduler is unhealthy and has no heartbeat" in failed.stderr
    ), failed.stderr
    assert "rolled back to" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert verify(box).returncode == 0
