"""The app's own process set (Procfile + app.json) on the real sandbox, with the fast sample
app: a branch brings its processes and checks, the slot runs exactly what its live release
declares (a type that disappears stops, a new one starts and is enabled at boot), a malformed
declaration is refused before anything starts, and logs name every declared process."""

from __future__ import annotations

import json
import socket
import time

import pytest

from devtools.sample_repo import DEFAULT_SOURCE, push_branch, resolve
from staging_ops import remote
from staging_ops.inventory import load_inventory
from tests.conftest import run_invoke
from tests.sandbox.deploying import PROCFILE
from tests.sandbox.slots import slot_for

SLOT = slot_for(__name__)
TASK = "JA-101"
APP_JSON = {
    "name": "sample",
    "healthchecks": {
        "web": [{"type": "startup", "path": "/health", "attempts": 20, "wait": 0.2}],
        "heartbeat": [{"type": "startup", "uptime": 1}],
    },
}


def deploy(box, branch: str):
    return run_invoke(
        "deploy", "--slot", str(SLOT), "--branch", branch, "--task", TASK, env=box.env()
    )


def units(box) -> dict[str, str]:
    """The slot's units and their states, as systemctl on the sandbox host says."""
    inventory = load_inventory(box.inventory_path)
    slot = inventory.slots[SLOT]
    names = [
        f"job-search-{name}@{slot.identifier}.service"
        for name in ("ui", "airflow-webserver", "airflow-scheduler", "worker")
    ]
    names[-1] = f"job-search-worker@{slot.identifier}:heartbeat.service"
    session = remote.connect(inventory.hosts[slot.host])
    try:
        _, out, _ = session.run("systemctl is-active " + " ".join(names), check=False)
    finally:
        session.close()
    return dict(zip(("web", "airflow", "scheduler", "heartbeat"), out.split(), strict=True))


def wants(box) -> list[str]:
    wanted = box.hosts[0].root / "etc/systemd/system/multi-user.target.wants"
    return sorted(p.name for p in wanted.glob(f"job-search-worker@staging-{SLOT}:*"))


def releases(box) -> list[str]:
    base = box.hosts[0].root / f"srv/staging/staging-{SLOT}/releases"
    return sorted(p.name for p in base.iterdir()) if base.exists() else []


@pytest.fixture(scope="module")
def box(sandbox, provisioned):
    push_branch(
        sandbox.repo_path, "procs", {"Procfile": PROCFILE, "app.json": json.dumps(APP_JSON)}
    )
    no_airflow = (
        "web: python app.py ui\nrelease: python app.py migrate\n"
        "heartbeat: python app.py airflow-scheduler\n"
    )
    push_branch(sandbox.repo_path, "procs-lean", {"Procfile": no_airflow})
    return sandbox


def test_a_branch_brings_its_processes_and_the_slot_follows_its_live_release(box):
    first = deploy(box, "procs")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "(Procfile: web, airflow, scheduler, heartbeat)" in first.stdout
    assert units(box) == {
        "web": "active", "airflow": "active", "scheduler": "active", "heartbeat": "active"
    }  # fmt: skip
    assert wants(box) == [f"job-search-worker@staging-{SLOT}:heartbeat.service"]
    live = box.hosts[0].root / f"srv/staging/staging-{SLOT}/current"
    spec = json.loads((live / ".process-spec.json").read_text())
    assert spec["source"] == "Procfile" and "heartbeat" in spec["processes"]
    assert (live / ".processes").read_text().startswith("web\tpython app.py ui\n")

    # A release without Airflow and the scheduler: those stop, the worker stays.
    lean = deploy(box, "procs-lean")
    assert lean.returncode == 0, lean.stdout + lean.stderr
    assert units(box) == {
        "web": "active", "airflow": "inactive", "scheduler": "inactive", "heartbeat": "active"
    }  # fmt: skip
    verify = run_invoke("verify", "--slot", str(SLOT), env=box.env())
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # Back to a repository without a Procfile: the inventory's three, the worker gone for good.
    main = deploy(box, "main")
    assert main.returncode == 0, main.stdout + main.stderr
    assert units(box) == {
        "web": "active", "airflow": "active", "scheduler": "active", "heartbeat": "inactive"
    }  # fmt: skip
    assert wants(box) == []

    # A rollback brings back the processes of the release it goes back to.
    back = run_invoke("rollback", "--slot", str(SLOT), "--task", TASK, env=box.env())
    assert back.returncode == 0, back.stdout + back.stderr
    assert units(box)["heartbeat"] == "active" and units(box)["airflow"] == "inactive"


def test_logs_name_every_declared_process_and_refuse_others(box):
    assert deploy(box, "procs").returncode == 0
    for service in ("heartbeat", "web", "scheduler", "ui", "airflow-scheduler"):
        # Enough lines to reach back past verify's and status's requests to the start mark.
        lines = ["-n", "40"]
        shown = run_invoke("logs", "--slot", str(SLOT), "--service", service, *lines, env=box.env())
        assert shown.returncode == 0, (service, shown.stderr)
        assert "run-process: starting" in shown.stdout, service
    undeclared = run_invoke("logs", "--slot", str(SLOT), "--service", "nope", env=box.env())
    assert undeclared.returncode == 2
    assert "declares no process 'nope'" in undeclared.stderr
    bad = run_invoke("logs", "--slot", str(SLOT), "--service", "a;b", env=box.env())
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"Procfile": "web: python app.py ui\noops\n"}, "Procfile line 2: not `type: command`"),
        ({"Procfile": "web: a\nweb: b\n"}, "Procfile line 2: process type 'web' again"),
        ({"Procfile": "worker: python app.py ui\n"}, "Procfile: no `web` process"),
        (
            {
                "Procfile": PROCFILE,
                "app.json": '{"healthchecks": {"web": [{"path": "/x", "atempts": 1}]}}',
            },
            "app.json: healthchecks.web[0]: unknown key 'atempts' (did you mean 'attempts'?)",
        ),
        ({"app.json": '{"healthchecks": {\n"web": ]}'}, "app.json line 2: malformed JSON"),
        (
            {"Procfile": PROCFILE, "app.json": '{"healthchecks": {"db": []}}'},
            "no such process type",
        ),
    ],
)
def test_a_malformed_declaration_is_refused_before_anything_starts(box, files, problem):
    assert deploy(box, "procs").returncode == 0
    serving = (box.hosts[0].root / f"srv/staging/staging-{SLOT}/current").resolve().name
    before = releases(box)
    push_branch(box.repo_path, "procs-bad", files)
    refused = deploy(box, "procs-bad")
    assert refused.returncode == 1
    assert problem in refused.stderr
    assert "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "nothing was switched" in refused.stderr
    assert releases(box) == before  # nothing exported, nothing started
    assert (box.hosts[0].root / f"srv/staging/staging-{SLOT}/current").resolve().name == serving


def test_an_app_json_check_that_fails_refuses_the_release_naming_the_check(box):
    assert deploy(box, "procs").returncode == 0
    good = resolve(box.repo_path, "procs")
    failing = dict(APP_JSON)
    failing["healthchecks"] = {
        "web": [{"path": "/health", "attempts": 2, "wait": 0.1, "content": "never there"}]
    }
    push_branch(
        box.repo_path, "procs-check", {"Procfile": PROCFILE, "app.json": json.dumps(failing)}
    )
    started = time.monotonic()
    refused = deploy(box, "procs-check")
    assert refused.returncode == 1
    assert (
        "app.json check failed 2 attempts: /health answers without 'never there'" in refused.stderr
    )
    assert "candidate verify failed" in refused.stderr and "nothing was switched" in refused.stderr
    assert f"--- last lines of job-search-ui-candidate@staging-{SLOT}.service ---" in refused.stderr
    assert time.monotonic() - started < 30
    status = run_invoke("status", "--json", env=box.env())
    row = next(r for r in json.loads(status.stdout) if r["slot"] == SLOT)
    assert row["commit"] == good


# A worker that listens on every address (an ephemeral port): what Airflow's log server did.
LISTENER = (
    "listener: python -c \"import socket, time; s = socket.socket(); s.bind(('0.0.0.0', 0)); "
    's.listen(); time.sleep(3600)"\n'
)


def _public_web(box) -> dict[str, str]:
    """The sample app serving on every address."""
    app = (DEFAULT_SOURCE / "app.py").read_text()
    public = app.replace('BIND_HOST = "127.0.0.1"', 'BIND_HOST = "0.0.0.0"')
    assert public != app
    return {"Procfile": PROCFILE, "app.py": public}


@pytest.mark.parametrize(
    ("files", "failed", "problem", "after"),
    [
        (
            _public_web,
            "candidate verify",
            "web (candidate) listens on 0.0.0.0:",
            "nothing was switched, the previous release keeps serving",
        ),
        (
            lambda box: {"Procfile": PROCFILE + LISTENER},
            "candidate stop + scheduler restart",
            "listener (current) listens on 0.0.0.0:",
            "rolled back to",
        ),
    ],
    ids=["web", "worker"],
)
def test_a_process_listening_beyond_loopback_is_refused(box, files, failed, problem, after):
    assert deploy(box, "procs").returncode == 0
    good = resolve(box.repo_path, "procs")
    push_branch(box.repo_path, "procs-public", files(box))
    refused = deploy(box, "procs-public")
    assert refused.returncode == 1
    first = refused.stderr.splitlines()[0]
    assert f"{failed} failed: {problem}" in first, refused.stderr
    assert "beyond loopback: only nginx may face the network" in first
    assert after in first
    status = run_invoke("status", "--json", env=box.env())
    row = next(r for r in json.loads(status.stdout) if r["slot"] == SLOT)
    assert row["commit"] == good
    # What the refused release started is gone: the worker's unit too.
    assert units(box)["heartbeat"] == "active"
    listener = f"job-search-worker@staging-{SLOT}:listener.service"
    inventory = load_inventory(box.inventory_path)
    session = remote.connect(inventory.hosts[inventory.slots[SLOT].host])
    try:
        _, out, _ = session.run(f"systemctl is-active {listener}", check=False)
    finally:
        session.close()
    assert out.strip() in ("inactive", "unknown")


def test_verify_names_a_process_that_listens_beyond_loopback_later(box):
    """A worker that opens a server on every address after the deploy judged it: `verify`
    says so, naming the type and the address (and exits 1)."""
    late = LISTENER.replace(
        'listener: python -c "import', 'late: python -c "import time; time.sleep(4); import'
    )
    push_branch(box.repo_path, "procs-late", {"Procfile": PROCFILE + late})
    assert deploy(box, "procs-late").returncode == 0
    deadline = time.monotonic() + 20
    while True:
        verify = run_invoke("verify", "--slot", str(SLOT), "--json", env=box.env())
        verdict = json.loads(verify.stdout)
        outside = [p for p in verdict["process_problems"] if "beyond loopback" in p]
        if outside or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert verify.returncode == 1
    assert outside and outside[0].startswith("late (current) listens on 0.0.0.0:"), verdict
    # Back to a release without it: nothing of the slot listens beyond loopback.
    assert deploy(box, "procs").returncode == 0
    again = run_invoke("verify", "--slot", str(SLOT), "--json", env=box.env())
    assert again.returncode == 0, again.stdout


def test_a_process_that_serves_another_port_than_its_own_is_refused_saying_where_it_listens(box):
    """Airflow told a port of its own instead of $PORT: its app.json check finds nobody on the
    slot's port, and the failure says where it listens."""
    assert deploy(box, "procs").returncode == 0
    with socket.socket() as probe:  # a free loopback port, not the slot's
        probe.bind(("127.0.0.1", 0))
        other = probe.getsockname()[1]
    procfile = PROCFILE.replace(
        "airflow: python app.py airflow-webserver",
        f"airflow: AIRFLOW_PORT={other} python app.py airflow-webserver",
    )
    app_json = json.loads(json.dumps(APP_JSON))
    app_json["healthchecks"]["airflow"] = [{"path": "/airflow/health", "attempts": 5, "wait": 0.2}]
    push_branch(
        box.repo_path, "procs-port", {"Procfile": procfile, "app.json": json.dumps(app_json)}
    )
    refused = deploy(box, "procs-port")
    assert refused.returncode == 1
    first = refused.stderr.splitlines()[0]
    assert "candidate verify failed" in first and "nothing was switched" in first
    assert f"; it listens on 127.0.0.1:{other} instead: it must serve $PORT (" in first
