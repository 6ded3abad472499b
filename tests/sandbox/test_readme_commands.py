"""The README's two commands work as written, as root without sudo and as a sudo user.

They are `bash scripts/demo.sh` and `bash scripts/test.sh`; each sources scripts/as-root.sh
first, which runs the script as it is for root and through sudo once for anyone else. The
probes below source the same file, as the real scripts do, under each kind of operator.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AS_ROOT = ROOT / "scripts" / "as-root.sh"
USER = "staging-ops-readme"
AS_USER = ["runuser", "-u"]

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a sudo user")


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md starts with a bash block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_commands_need_no_sudo_and_each_script_elevates_itself_first():
    assert _readme_commands() == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    for name in ("demo.sh", "test.sh"):
        lines = [
            line
            for line in (ROOT / "scripts" / name).read_text().splitlines()
            if line and not line.startswith("#")
        ]
        # Before anything else runs (set -euo pipefail is harmless): nothing as the wrong user.
        assert lines[1] == 'source "$(dirname "$0")/as-root.sh"', (name, lines[:3])


@pytest.fixture
def tmp_path():
    # pytest's own tmp_path is root's alone (0700): the sudo user must read the probe.
    work = Path(tempfile.mkdtemp(prefix="staging-ops-readme-", dir="/tmp"))
    work.chmod(0o755)
    yield work
    shutil.rmtree(work, ignore_errors=True)


def _probe(tmp_path: Path) -> Path:
    # A copy of the very file the scripts source, where any user may read it.
    shutil.copy2(AS_ROOT, tmp_path / "as-root.sh")
    probe = tmp_path / "probe.sh"
    probe.write_text(
        f"source {tmp_path / 'as-root.sh'}\n"
        'echo "uid=$(id -u) args=$* browser=${STAGING_WITH_BROWSER:-}"\n'
    )
    probe.chmod(0o755)
    return probe


def _bin_without_sudo(tmp_path: Path) -> Path:
    # A PATH with what the probe needs and no sudo: a fresh Debian 12 as root may have none.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "id", "realpath", "basename", "dirname"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return bin_dir


@needs_root
def test_root_without_sudo_runs_the_script_as_it_is(tmp_path):
    probe = _probe(tmp_path)
    env = {"PATH": str(_bin_without_sudo(tmp_path)), "STAGING_WITH_BROWSER": "0"}
    result = subprocess.run(
        ["bash", str(probe), "a b"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "uid=0 args=a b browser=0"


@pytest.fixture
def sudo_user():
    if not shutil.which("sudo") or not shutil.which("runuser"):
        pytest.skip("sudo and runuser are needed (scripts/setup.sh installs sudo)")
    sudoers = Path("/etc/sudoers.d") / USER
    subprocess.run(["userdel", USER], capture_output=True)
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/bash", USER], check=True)
    sudoers.write_text(f"{USER} ALL=(ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    try:
        yield USER
    finally:
        sudoers.unlink(missing_ok=True)
        subprocess.run(["userdel", USER], capture_output=True)


@needs_root
def test_a_sudo_user_goes_through_sudo_once_with_the_scripts_settings(tmp_path, sudo_user):
    probe = _probe(tmp_path)
    result = subprocess.run(
        [*AS_USER, sudo_user, "--", "env", "STAGING_WITH_BROWSER=0", "bash", str(probe), "x"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "uid=0 args=x browser=0"


@needs_root
def test_someone_else_without_sudo_gets_one_line_and_exit_2(tmp_path, sudo_user):
    probe = _probe(tmp_path)
    bin_dir = _bin_without_sudo(tmp_path)
    result = subprocess.run(
        ["runuser", "-u", sudo_user, "--", "env", f"PATH={bin_dir}", "bash", str(probe)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == "probe.sh: run this as root (sudo is not installed)"
