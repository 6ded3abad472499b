"""provision's remote scripts, run here: the prepare script on a temp dir (as root), the
services script and the install script with fake `systemctl`, `nginx` and `apt-get` first on
PATH. Values are arguments: a space or a `;` in one stays inside it."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from staging_ops import remote
from staging_ops.errors import StagingError
from staging_ops.provision import handlers
from staging_ops.provision.apply import parse_ids
from staging_ops.provision.plan import INSTALL_SCRIPT, PREPARE_SCRIPT, SERVICES_SCRIPT
from staging_ops.remote.facts import UserIds

# Each fake logs its arguments one per line after a header line, and fails when told to.
FAKE = """#!/bin/sh
{{ echo "== {name}"; for a in "$@"; do echo "$a"; done; }} >> "$FAKE_LOG"
case " $FAKE_FAIL " in *" {name}:$1 "*) echo "[emerg] {name} $1 refused" ; exit 1 ;; esac
exit 0
"""


def _run(name: str, *args: str, env: dict[str, str] | None = None):
    command = remote.script_command(name, *args)
    return subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, env=env, check=False
    )


@pytest.fixture
def fakes(tmp_path: Path):
    """PATH with fake systemctl, nginx and apt-get; returns (env, read_log)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("systemctl", "nginx", "apt-get"):
        path = bin_dir / name
        path.write_text(FAKE.format(name=name))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "log"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_LOG": str(log)}

    def calls() -> list[list[str]]:
        if not log.exists():
            return []
        found: list[list[str]] = []
        for line in log.read_text().splitlines():
            if line.startswith("== "):
                found.append([line[3:]])
            else:
                found[-1].append(line)
        return found

    return env, calls


# --- services -------------------------------------------------------------------------------

ENABLE = ["enable", "2", "nginx", "postgresql"]
RESTART = ["restart", "3", "ui@s 1.service", "web@s1;touch x.service", "sched@s1.service"]


def _services(tmp_path: Path, env: dict[str, str], *actions: str, fail: str = ""):
    marker = tmp_path / "pending.json"
    marker.write_text("{}")
    run = _run(
        SERVICES_SCRIPT,
        str(marker),
        "nginx -t",
        "nginx -s reload",
        *actions,
        env={**env, "FAKE_FAIL": fail},
    )
    return run, marker.exists()


def test_services_run_in_order_each_list_in_one_call(tmp_path, fakes):
    env, calls = fakes
    actions = [*ENABLE, "daemon-reload", *RESTART, "start", "1", "ui@s2.service", "nginx"]
    run, marker_left = _services(tmp_path, env, *actions)
    assert (run.returncode, marker_left) == (0, False), run.stderr
    assert calls() == [
        ["systemctl", "enable", "--now", "--quiet", "nginx", "postgresql"],
        ["systemctl", "daemon-reload"],
        ["systemctl", "restart", "ui@s 1.service", "web@s1;touch x.service", "sched@s1.service"],
        ["systemctl", "start", "ui@s2.service"],
        ["nginx", "-t"],
        ["nginx", "-s", "reload"],
    ]
    assert not (Path.cwd() / "x.service").exists()


def test_services_with_nothing_to_do_only_clear_the_marker(tmp_path, fakes):
    env, calls = fakes
    run, marker_left = _services(tmp_path, env)
    assert (run.returncode, marker_left, calls()) == (0, False, [])


@pytest.mark.parametrize(
    ("fail", "code", "ran_last"),
    [
        # A failed systemd step does not stop the later ones; the marker stays.
        ("systemctl:restart", 1, ["nginx", "-s", "reload"]),
        ("nginx:-s", 1, ["nginx", "-s", "reload"]),
        # nginx -t refuses: no reload, its output on stdout, the code says what else failed.
        ("nginx:-t", handlers.NGINX_FAILED, ["nginx", "-t"]),
        ("nginx:-t systemctl:daemon-reload", handlers.NGINX_AND_SYSTEMD_FAILED, ["nginx", "-t"]),
    ],
)
def test_services_exit_code_protocol(tmp_path, fakes, fail, code, ran_last):
    env, calls = fakes
    run, marker_left = _services(tmp_path, env, "daemon-reload", *RESTART, "nginx", fail=fail)
    assert (run.returncode, marker_left) == (code, True), run.stdout + run.stderr
    assert calls()[-1] == ran_last
    if code in (handlers.NGINX_FAILED, handlers.NGINX_AND_SYSTEMD_FAILED):
        assert "[emerg] nginx -t refused" in run.stdout


def test_the_script_header_names_the_codes_handlers_decodes():
    text = remote.scripts.script_text(SERVICES_SCRIPT)
    assert f"#   {handlers.NGINX_FAILED}  NGINX_TEST refused" in text
    assert f"#   {handlers.NGINX_AND_SYSTEMD_FAILED}  NGINX_TEST refused" in text


@pytest.mark.parametrize(
    "actions", [["restart", "3", "a.service"], ["start", "x", "a.service"], ["reboot"]]
)
def test_services_refuse_bad_arguments(tmp_path, fakes, actions):
    env, calls = fakes
    run, marker_left = _services(tmp_path, env, *actions)
    assert (run.returncode, marker_left, calls()) == (2, True, [])


# --- install --------------------------------------------------------------------------------


def test_install_updates_the_lists_then_installs_the_packages_given(fakes):
    env, calls = fakes
    run = _run(INSTALL_SCRIPT, "nginx", "python3-venv", env=env)
    assert run.returncode == 0, run.stderr
    flags = ["-y", "-q", "-o", "Dpkg::Progress-Fancy=0", "-o", "Dpkg::Use-Pty=0"]
    assert calls() == [
        ["apt-get", "update", "-q"],
        ["apt-get", "install", *flags, "nginx", "python3-venv"],
    ]


def test_install_stops_when_the_update_fails(fakes):
    env, calls = fakes
    run = _run(INSTALL_SCRIPT, "nginx", env={**env, "FAKE_FAIL": "apt-get:update"})
    assert run.returncode != 0
    assert calls() == [["apt-get", "update", "-q"]]


# --- prepare (as root: chown) ---------------------------------------------------------------

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


@root_only
def test_prepare_makes_directories_with_mode_and_owner(tmp_path: Path):
    odd = tmp_path / "a dir" / "$(touch pwned);x"
    kept = tmp_path / "kept"
    kept.mkdir(mode=0o777)
    run = _run(
        PREPARE_SCRIPT,
        *("useradd", "nobody"),  # exists: left as it is
        *("mkdir", "750", "nobody", str(odd)),
        *("chmod", "700", str(kept)),
        *("chown", "nobody", str(kept)),
        *("ids", "nobody"),
    )
    assert run.returncode == 0, run.stderr
    nobody = subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True).stdout
    group = subprocess.run(["id", "-g", "nobody"], capture_output=True, text=True).stdout
    assert parse_ids(run.stdout) == UserIds(int(nobody), int(group))
    info = odd.stat()
    assert (stat.S_IMODE(info.st_mode), odd.owner(), info.st_gid) == (0o750, "nobody", int(group))
    assert stat.S_IMODE(kept.stat().st_mode) == 0o700 and kept.owner() == "nobody"
    assert not list(tmp_path.rglob("pwned")) and not (Path.cwd() / "pwned").exists()


@root_only
def test_prepare_stops_at_the_first_failure(tmp_path: Path):
    run = _run(
        PREPARE_SCRIPT,
        *("chmod", "700", str(tmp_path / "missing")),
        *("mkdir", "755", "root", str(tmp_path / "later")),
        *("ids", "root"),
    )
    assert run.returncode != 0 and run.stdout == ""
    assert not (tmp_path / "later").exists()


@pytest.mark.parametrize("args", [["mkdir", "755", "root"], ["format", "/"]])
def test_prepare_refuses_bad_arguments(args):
    run = _run(PREPARE_SCRIPT, *args)
    assert run.returncode == 2 and run.stderr.startswith(PREPARE_SCRIPT)


# --- the PostgreSQL admin password --------------------------------------------------------------


def test_admin_password_goes_to_psql_as_variables_never_into_the_sql(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    runuser = bin_dir / "runuser"
    log = tmp_path / "log"
    runuser.write_text(
        '#!/bin/sh\nfor a in "$@"; do echo "$a"; done > "$FAKE_LOG"\ncat >> "$FAKE_LOG"\n'
    )
    runuser.chmod(0o755)
    verifier = "SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2VydmVy'; DROP ROLE x; --"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_LOG": str(log)}
    run = _run("provision-pg-admin-password.sh", "5433", "post gres", verifier, env=env)
    assert run.returncode == 0, run.stderr
    lines = log.read_text().splitlines()
    assert lines[:4] == ["-u", "postgres", "--", "psql"]
    assert lines[lines.index("-p") : lines.index("-p") + 2] == ["-p", "5433"]
    assert "admin=post gres" in lines and f"verifier={verifier}" in lines
    assert lines[-1] == "ALTER ROLE :\"admin\" PASSWORD :'verifier';"


@pytest.mark.parametrize(
    ("out", "ids"),
    [
        ('{"uid": 999, "gid": 998}\n', UserIds(999, 998)),
        ('mkdir said something\n{"uid": 0, "gid": 0}\n', UserIds(0, 0)),
    ],
)
def test_prepare_answers_the_ids_in_one_json_line(out, ids):
    assert parse_ids(out) == ids


@pytest.mark.parametrize("out", ["", "999 998\n", '{"uid": , "gid": }\n', '{"uid": 1}\n', "[]"])
def test_an_unreadable_ids_answer_is_one_clear_error(out):
    with pytest.raises(StagingError, match=r"provision-prepare\.sh: no user ids"):
        parse_ids(out)
