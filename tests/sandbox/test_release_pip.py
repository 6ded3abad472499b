"""deploy-release.sh's venv build with the inventory's package sources, run here by sh as sshd
would run it, with Debian's python3 and a real pip: [app] pip_find_links alone installs from
that directory offline (pip never asks an index), pip_index_url installs from that index, and
neither changes the venv's key. The package exists only in the test's wheelhouse and index."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import os
import subprocess
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from staging_ops.deploy.release import Exported
from staging_ops.remote.scripts import script_command

PYTHON = "/usr/bin/python3"
PACKAGE = "stagingopsprobe"  # on no index anywhere: only ours can provide it
# An index nothing answers at: pip would log its retries here if it asked it.
DEAD_INDEX = "http://127.0.0.1:9/simple/"

pytestmark = pytest.mark.skipif(
    not Path(PYTHON).exists()
    or subprocess.run([PYTHON, "-c", "import ensurepip"], check=False).returncode != 0,
    reason="needs Debian's python3 with venv",
)


def make_wheel(directory: Path, version: str) -> Path:
    """A minimal, valid pure-Python wheel of PACKAGE (what `pip wheel` would write)."""
    name = f"{PACKAGE}-{version}"
    files = {
        f"{PACKAGE}/__init__.py": f"VERSION = {version!r}\n",
        f"{name}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {version}\n"
        ),
        f"{name}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{name}.dist-info/RECORD,,")
    files[f"{name}.dist-info/RECORD"] = "\n".join(record) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{name}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def commit_requirements(repo: Path, text: str) -> str:
    """A commit of a repository holding only requirements.txt; returns its sha."""
    work = repo.with_name(repo.name + ".work")
    if not work.exists():
        subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "requirements.txt").write_text(text)
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", text.strip()], check=True)
    if not repo.exists():
        subprocess.run(["git", "clone", "-q", "--bare", str(work), str(repo)], check=True)
    subprocess.run([*git, "push", "-q", str(repo), "main"], check=True)
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def release(
    tmp: Path, commit: str, name: str, find_links: str, index_url: str, env_index: str = DEAD_INDEX
):
    """deploy-release.sh for `commit`, pip's environment naming `env_index` as its index (as a
    droplet's pip.conf could); returns (the run, the venv line's state and key)."""
    slot = tmp / "slot"
    (slot / "releases").mkdir(parents=True, exist_ok=True)
    command = script_command(
        "deploy-release.sh",
        str(tmp / "repo.git"),
        commit,
        str(slot / "releases" / f".{name}.partial"),
        str(slot / "releases" / name),
        str(tmp / "venvs"),
        'DEPLOYED_COMMIT="x"\n',
        PYTHON,
        "root",
        str(slot / "current"),
        "{}",
        "",
        find_links,
        index_url,
        "requirements.txt",
    )
    # The machine's own pip settings (its index, find-links) must not help: none but ours.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=env_index, PIP_RETRIES="0")
    result = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, env=env, check=False
    )
    state = Exported.parse(result.stdout).venv.split() if result.returncode == 0 else ["", ""]
    return result, state[0], state[1]


def installed(tmp: Path, name: str) -> str:
    python = tmp / "slot" / "releases" / name / ".venv" / "bin" / "python"
    return subprocess.run(
        [str(python), "-c", f"import {PACKAGE}; print({PACKAGE}.VERSION)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


class _Counting(http.server.SimpleHTTPRequestHandler):
    """Serves the index quietly, counting the requests (the server's `asked`)."""

    def log_message(self, *args: object) -> None:
        self.server.asked += 1  # type: ignore[attr-defined]


@dataclass
class Index:
    url: str
    server: http.server.ThreadingHTTPServer

    @property
    def asked(self) -> int:
        return self.server.asked  # type: ignore[attr-defined]


@pytest.fixture
def index(tmp_path):
    """A PEP 503 simple index on loopback serving PACKAGE 2.0 only (newer than the
    wheelhouse's 1.0: pip would prefer it wherever it may look)."""
    root = tmp_path / "index"
    wheel = make_wheel(root / "files", "2.0")
    project = root / "simple" / PACKAGE
    project.mkdir(parents=True)
    (project / "index.html").write_text(f'<a href="../../files/{wheel.name}">{wheel.name}</a>\n')
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Counting, directory=str(root))
    )
    server.asked = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Index(f"http://127.0.0.1:{server.server_address[1]}/simple/", server)
    finally:
        server.shutdown()
        server.server_close()


def test_find_links_alone_installs_offline_and_the_index_url_from_that_index(tmp_path, index):
    make_wheel(tmp_path / "wheelhouse", "1.0")
    first = commit_requirements(tmp_path / "repo.git", f"{PACKAGE}\n")

    # pip's environment names a live index with a newer release: --no-index keeps pip off it.
    offline, state, key = release(
        tmp_path, first, "r1", str(tmp_path / "wheelhouse"), "", env_index=index.url
    )
    assert offline.returncode == 0, offline.stderr
    assert state == "built"
    assert installed(tmp_path, "r1") == "1.0"
    assert index.asked == 0

    # Other package sources, same files: the same venv (its key ignores where pip looked).
    again, state, same = release(tmp_path, first, "r2", "", index.url)
    assert again.returncode == 0, again.stderr
    assert (state, same) == ("reused", key)

    # pip_index_url is the index pip asks (its environment's is dead here).
    second = commit_requirements(tmp_path / "repo.git", f"{PACKAGE}>=2\n")
    online, state, other = release(tmp_path, second, "r3", "", index.url)
    assert online.returncode == 0, online.stderr
    assert state == "built" and other != key
    assert installed(tmp_path, "r3") == "2.0"
    assert index.asked > 0


def test_without_them_pip_keeps_its_own_settings(tmp_path, index):
    """Neither set: no --no-index and no index of ours; pip asks the index its environment
    names, and a failure there is the script's exit, the partial release not renamed."""
    commit = commit_requirements(tmp_path / "repo.git", f"{PACKAGE}\n")
    result, state, _ = release(tmp_path, commit, "r1", "", "", env_index=index.url)
    assert result.returncode == 0, result.stderr
    assert state == "built" and installed(tmp_path, "r1") == "2.0"

    later = commit_requirements(tmp_path / "repo.git", f"{PACKAGE}==3.0\n")
    failed, _, _ = release(tmp_path, later, "r2", "", "", env_index=index.url)
    assert failed.returncode != 0
    assert PACKAGE in failed.stderr
    assert not (tmp_path / "slot" / "releases" / "r2").exists()
