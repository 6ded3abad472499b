"""status-live.sh run for real over slots laid out as on the droplet (a stand-in systemctl),
its one JSON line read by remote.live.parse_live: what the script says and what the parser
reads agree, whatever a branch is named."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from staging_ops.processes.status import UnitState
from staging_ops.remote.live import LiveRelease, live_command, parse_live

SYSTEMCTL = """#!/bin/sh
shift 7  # show -p ActiveState -p SubState -p NRestarts
for unit; do
  case $unit in
    *ui*) printf 'ActiveState=active\\nSubState=running\\nNRestarts=0\\n\\n' ;;
    *) printf 'ActiveState=failed\\nSubState=failed\\nNRestarts=4\\n\\n' ;;
  esac
done
"""

ODD = 'feat/"quoted" back\\\\slash $(x) `y`'


def slot(base: Path, name: str, branch: str, ok: bool, spec: str | None) -> str:
    release = base / name / "releases" / "r1"
    release.mkdir(parents=True)
    (release / ".release-env").write_text(
        f'DEPLOYED_COMMIT="abc1234"\nDEPLOYED_BRANCH="{branch}"\n'
    )
    (release / ".processes").write_text("web\tgunicorn\nrelease\tmigrate\nhb\tbeat\n")
    if ok:
        (release / ".ok").touch()
    if spec is not None:
        (release / ".process-spec.json").write_text(spec + "\n")
    (base / name / "current").symlink_to("releases/r1")
    return str(base / name / "current")


@pytest.fixture
def answer(tmp_path: Path) -> str:
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    fake.write_text(SYSTEMCTL)
    fake.chmod(0o755)
    spec = '{"source": "Procfile", "processes": {"web": "gunicorn \\"x\\""}}'
    one = slot(tmp_path, "staging-1", ODD, True, spec)
    two = slot(tmp_path, "staging-2", "main", False, None)
    units = "web=app-ui@{0}.service *=app-worker@{0}:"
    command = live_command(
        str(tmp_path / "bin" / "app.processes"),
        one,
        units.format("staging-1"),
        str(tmp_path / "staging-3" / "current"),  # no link
        units.format("staging-3"),
        two,
        units.format("staging-2"),
    )
    result = subprocess.run(
        ["sh", "-c", command],
        capture_output=True,
        text=True,
        env={"PATH": f"{fake.parent}:/usr/bin:/bin"},
        check=True,
    )
    assert len(result.stdout.splitlines()) == 1  # one JSON line
    return result.stdout


def test_the_scripts_answer_reads_as_each_slots_release_spec_and_unit_states(answer):
    found, processes = parse_live(answer, 3)
    assert found == [
        LiveRelease("r1", "abc1234", ODD, True),
        LiveRelease(),
        LiveRelease("r1", "abc1234", "main", False),
    ]
    first, none, last = processes
    assert none is None and first is not None and last is not None
    assert first.spec_text == '{"source": "Procfile", "processes": {"web": "gunicorn \\"x\\""}}'
    assert last.spec_text is None
    assert first.states == {
        "app-ui@staging-1.service": UnitState("active", "running", 0),
        "app-worker@staging-1:hb.service": UnitState("failed", "failed", 4),
    }
    assert set(last.states) == {"app-ui@staging-2.service", "app-worker@staging-2:hb.service"}
