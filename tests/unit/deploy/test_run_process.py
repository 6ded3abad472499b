"""bin/run-process, the ExecStart of every slot unit and the release phase, run for real with
sh over a slot laid out as on the droplet: which command it runs, in which environment, and
what it refuses."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from staging_ops.inventory import load_inventory
from staging_ops.remote.scripts import SCRIPTS
from staging_ops.render.render import render_app_env, render_candidate_env, render_slot_env
from tests.conftest import DEFAULT_INVENTORY

SHOW = "env | sort"


def run(base: Path, instance: str, where: str, env: dict | None = None):
    return subprocess.run(
        ["sh", str(SCRIPTS / "run-process.sh"), str(base), instance, where],
        capture_output=True,
        text=True,
        env=env or {"PATH": "/usr/bin:/bin"},
        check=False,
    )


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A droplet's base dir with staging-4: its shared env files as provision-all renders
    them (with the inventory's [app.env]), a release with a Procfile's table, `current` and
    `candidate` at it."""
    inventory = load_inventory(DEFAULT_INVENTORY)
    host = inventory.target_hosts()[0]
    slot = inventory.slots[4]
    host = dataclasses.replace(host, base_dir=str(tmp_path))
    shared = tmp_path / "staging-4" / "shared"
    shared.mkdir(parents=True)
    for rendered in (
        render_slot_env(host, slot, "pw"),
        render_candidate_env(host, slot),
        render_app_env(inventory.app, host, slot),
    ):
        Path(rendered.path).write_text(rendered.content)
    release = tmp_path / "staging-4" / "releases" / "20260101T000000000Z-abc1234"
    (release / ".venv" / "bin").mkdir(parents=True)
    (release / ".release-env").write_text('DEPLOYED_COMMIT="abc1234"\nDEPLOYED_BRANCH="x"\n')
    (release / ".processes").write_text(f"web\t{SHOW}\nheartbeat\t{SHOW}\nrelease\techo migrated\n")
    for link in ("current", "candidate"):
        (tmp_path / "staging-4" / link).symlink_to(f"releases/{release.name}")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "app.processes").write_text(f"web\tFROM=inventory {SHOW}\n")
    return tmp_path


def environment(out: str) -> dict[str, str]:
    return dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)


def test_a_process_runs_in_its_release_with_the_slots_own_environment(base):
    done = run(base, "staging-4:web", "current")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("run-process: starting web of 20260101T000000000Z-abc1234")
    env = environment(done.stdout)
    slot = base / "staging-4"
    assert env["PORT"] == env["UI_PORT"] == "5004"
    assert env["RELEASE_DIR"] == str(slot / "current")
    assert env["AIRFLOW_HOME"] == str(slot / "shared" / "airflow")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(slot / "current" / "dags")  # [app.env]
    assert env["TMPDIR"] == str(slot / "shared" / "tmp" / "current-web")
    assert Path(env["TMPDIR"]).is_dir()
    assert env["HOME"] == str(slot / "shared" / "home")
    assert env["PATH"].split(":")[0] == str(slot / "current" / ".venv" / "bin")
    assert env["DEPLOYED_COMMIT"] == "abc1234"
    assert env["DATABASE_URL"].startswith("postgresql://job_search_staging_4:pw@")


def test_a_candidate_gets_its_own_ports_and_temp_dir(base):
    env = environment(run(base, "staging-4:web", "candidate").stdout)
    assert env["PORT"] == env["UI_PORT"] == "6004"
    assert env["STAGING_CANDIDATE"] == "1"
    assert env["TMPDIR"].endswith("/shared/tmp/candidate-web")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"].endswith("/staging-4/candidate/dags")


def test_a_worker_has_no_port_and_the_release_phase_runs_from_its_release(base):
    worker = environment(run(base, "staging-4:heartbeat", "current").stdout)
    assert "PORT" not in worker and worker["TMPDIR"].endswith("/shared/tmp/current-heartbeat")
    release = run(base, "staging-4:release", "releases/20260101T000000000Z-abc1234")
    assert release.returncode == 0 and release.stdout.splitlines()[-1] == "migrated"


def test_the_instance_records_its_main_process_for_slot_memory(base):
    """`<where>-<type>.pid` beside the instance's TMPDIR: the PID the command runs as (every
    exec keeps it) and its start time; the release phase records none."""
    release = base / "staging-4" / "releases" / "20260101T000000000Z-abc1234"
    (release / ".processes").write_text(
        'web\techo "$$ $(cut -d " " -f 22 /proc/$$/stat)"\nrelease\techo migrated\n'
    )
    for where in ("current", "candidate"):
        done = run(base, "staging-4:web", where)
        assert done.returncode == 0, done.stderr
        recorded = (base / "staging-4" / "shared" / "tmp" / f"{where}-web.pid").read_text()
        assert recorded == done.stdout.splitlines()[-1] + "\n"
    run(base, "staging-4:release", f"releases/{release.name}")
    assert sorted(p.name for p in (base / "staging-4" / "shared" / "tmp").glob("*.pid")) == [
        "candidate-web.pid",
        "current-web.pid",
    ]


def test_a_release_without_a_table_runs_the_inventorys_commands(base):
    (base / "staging-4" / "releases" / "20260101T000000000Z-abc1234" / ".processes").unlink()
    env = environment(run(base, "staging-4:web", "current").stdout)
    assert env["FROM"] == "inventory"


@pytest.mark.parametrize(
    ("instance", "where", "said"),
    [
        ("staging-4:scheduler", "current", "declares no process 'scheduler': not started"),
        ("staging-5:web", "current", "staging-5 has no current release: web not started"),
    ],
)
def test_nothing_to_run_exits_0_saying_so(base, instance, where, said):
    done = run(base, instance, where)
    assert done.returncode == 0 and said in done.stdout


@pytest.mark.parametrize(
    ("instance", "where"),
    [
        ("staging-4:web;id", "current"),
        ("../x:web", "current"),
        ("staging-4:", "current"),
        ("staging-4:web", "../../etc"),
        ("staging-4:web", "releases/../../x"),
    ],
)
def test_a_bad_instance_or_release_is_refused(base, instance, where):
    done = run(base, instance, where)
    assert done.returncode == 2 and "run-process: bad" in done.stderr
