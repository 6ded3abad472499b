"""The deploy's and the lock's remote scripts, run here against temp directories (with a
stand-in systemctl where they would ask systemd), plus shellcheck and the flock file
descriptors each one may hold."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from staging_ops.deploy import fds
from staging_ops.deploy import lock as slot_lock
from staging_ops.deploy.fetch import NOT_FOUND, Fetched, parse_fetch
from staging_ops.deploy.record import KEEP_RELEASES
from staging_ops.deploy.releases_sh import parse_list
from staging_ops.deploy.restart_sh import parse_restarts_before
from staging_ops.errors import StagingError
from staging_ops.remote.scripts import SCRIPTS, script_command, script_text

OURS = sorted(p.name for p in SCRIPTS.glob("*.sh") if p.name.startswith(("deploy-", "lock-")))


def run(command: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    """A remote command, run here by sh as sshd would run it."""
    return subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, env=env, check=False
    )


def sh(name: str, *args: object, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return run(script_command(name, *map(str, args)), env=env)


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed")
def test_every_script_is_shellcheck_clean():
    result = subprocess.run(
        ["shellcheck", "-s", "sh", *(str(SCRIPTS / n) for n in OURS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("name", OURS)
def test_a_script_holds_only_its_own_flock_fds_and_names_them(name):
    text = script_text(name)
    used = {int(n) for n in re.findall(r"exec (\d)>", text)}
    used |= {int(n) for n in re.findall(r"flock (?:-\w+ (?:\"\$\w+\" )?)*(\d)\b", text)}
    assert used == set(fds.BY_SCRIPT.get(name, ())), name
    if used:
        header = "".join(line for line in text.splitlines(True) if line.startswith("#"))
        assert "staging_ops/deploy/fds.py" in header
        for fd in used:
            assert re.search(rf"\b{fd} the ", header), (name, fd)


def test_the_fds_are_distinct():
    numbers = [fds.FENCE, fds.VENV, fds.MIRROR, fds.DEPLOY_LOCK]
    assert len(set(numbers)) == len(numbers)


# --- deploy-releases.sh: the listing, the .ok mark, the prune ----------------------------


def make_release(releases: Path, name: str, *, ok=False, bad=False, commit="", branch=""):
    path = releases / name
    path.mkdir(parents=True)
    (path / ".release-env").write_text(
        f'DEPLOYED_COMMIT="{commit or name}"\nDEPLOYED_BRANCH="{branch or "main"}"\n'
    )
    if ok:
        (path / ".ok").touch()
    if bad:
        (path / ".bad").touch()


def listing(releases: Path) -> list[dict]:
    result = sh("deploy-releases.sh", "list", releases)
    assert result.returncode == 0, result.stderr
    return parse_list(result.stdout)


def test_the_listing_is_newest_first_with_marks_and_the_old_log_counts_as_verified(tmp_path):
    releases = tmp_path / "releases"
    make_release(releases, "r1")  # verified before `.ok` existed: a deploys.log line
    make_release(releases, "r2", bad=True, ok=True, branch="feat/x")
    make_release(releases, "r3", ok=True)
    make_release(releases, "r4")  # a killed deploy's
    (releases / ".r5.partial").mkdir()
    (tmp_path / "deploys.log").write_text("2025-01-01T00:00:00+00:00 me main c1 r1\n")
    assert [(r.name, r.ok, r.bad, r.branch) for r in listing(releases)] == [
        ("r4", False, False, "main"),
        ("r3", True, False, "main"),
        ("r2", True, True, "feat/x"),
        ("r1", True, False, "main"),
    ]


def test_no_releases_dir_lists_nothing(tmp_path):
    assert listing(tmp_path / "releases") == []


def test_the_listing_is_one_json_line_whatever_the_branch_holds(tmp_path):
    """A .release-env written by hand (or by an older deploy) may hold any character: the
    listing stays one JSON line, and the branch reads back as written between its quotes."""
    releases = tmp_path / "releases"
    branch = 'fe"at\\x\\'
    make_release(releases, "r1", branch=branch, commit="c1")
    (releases / "r2").mkdir()  # no .release-env at all
    result = sh("deploy-releases.sh", "list", releases)
    assert len(result.stdout.splitlines()) == 1
    assert [(r.name, r.commit, r.branch) for r in parse_list(result.stdout)] == [
        ("r2", "", ""),
        ("r1", "c1", branch),
    ]


def record(tmp_path: Path, release: str, previous: str = "", keep: int = KEEP_RELEASES):
    log = tmp_path / "deploys.log"
    line = f"2026-01-01T00:00:00+00:00 me main c-{release} {release}"
    result = sh(
        "deploy-releases.sh", "record", tmp_path / "releases", log, line, release, previous, keep
    )
    assert result.returncode == 0, result.stderr
    return sorted(p.name for p in (tmp_path / "releases").iterdir())


def test_record_marks_ok_logs_and_keeps_the_newest(tmp_path):
    releases = tmp_path / "releases"
    for n in range(1, 9):
        make_release(releases, f"r{n}", ok=True)
    assert record(tmp_path, "r8", "r7") == ["r4", "r5", "r6", "r7", "r8"]
    assert (releases / "r8/.ok").exists()
    assert (tmp_path / "deploys.log").read_text().splitlines()[-1].endswith(" c-r8 r8")


def test_record_run_again_after_a_lost_connection_changes_nothing_more(tmp_path):
    releases = tmp_path / "releases"
    for n in range(1, 9):
        make_release(releases, f"r{n}", ok=True)
    first = record(tmp_path, "r8", "r7")
    log = (tmp_path / "deploys.log").read_text()
    assert record(tmp_path, "r8", "r7") == first
    assert (tmp_path / "deploys.log").read_text() == log and log.count(" r8\n") == 1
    # Another run's line for the same release (a rollback to it later) is still appended.
    line = "2026-01-02T00:00:00+00:00 me main c-r8 r8"
    result = sh(
        "deploy-releases.sh", "record", releases, tmp_path / "deploys.log", line, "r8", "", 5
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "deploys.log").read_text().count(" r8\n") == 2


# r1..r7 (oldest first) marked ok, bad, "log" (verified by a deploys.log line only) or "."
# (never verified); then the release recorded, the previous one, and what the prune keeps.
@pytest.mark.parametrize(
    ("marks", "release", "previous", "kept"),
    [
        # The one rollback would pick (newest verified, not bad, older than the release) stays,
        # however old: here r2, since r3..r7 are bad or unverified.
        ("ok ok bad . . . .", "r8", "r7", "r2 r4 r5 r6 r7 r8"),
        # The previous release stays too, however old (a rollback --to far back).
        ("ok ok ok ok ok ok ok", "r8", "r1", "r1 r4 r5 r6 r7 r8"),
        # A release verified only by the old deploy log is a rollback target as well.
        ("log . . . . . .", "r8", "", "r1 r4 r5 r6 r7 r8"),
        # The recorded release is kept even when it is not among the newest (a rollback).
        ("ok ok ok ok ok ok ok", "r1", "r7", "r1 r3 r4 r5 r6 r7"),
    ],
)
def test_the_prune_never_removes_the_release_the_previous_or_the_rollback_target(
    tmp_path, marks, release, previous, kept
):
    releases = tmp_path / "releases"
    names = [f"r{n}" for n in range(1, 8)]
    for name, mark in zip(names, marks.split(), strict=True):
        make_release(releases, name, ok=mark == "ok", bad=mark == "bad")
        if mark == "log":
            with (tmp_path / "deploys.log").open("a") as log:
                log.write(f"2020-01-01T00:00:00+00:00 me main c {name}\n")
    if release not in names:
        make_release(releases, release)
    assert record(tmp_path, release, previous) == kept.split()


@pytest.mark.parametrize(
    ("broken", "says"),
    [
        ("log", "cannot append to"),
        ("releases", "no directory"),
        ("release", "cannot write"),
    ],
)
def test_a_mark_that_cannot_be_written_exits_3_and_says_what(tmp_path, broken, says):
    """Pruning is best effort; the log line and `.ok` are not: without them the release reads
    as never verified."""
    releases = tmp_path / "releases"
    make_release(releases, "20260101T000000Z-aaaaaaa")
    log = tmp_path / "deploys.log"
    release = "20260101T000000Z-aaaaaaa"
    if broken == "log":
        log = tmp_path / "no-such-dir" / "deploys.log"
    elif broken == "releases":
        releases = tmp_path / "gone"
    else:
        release = "20260101T000000Z-missing"
    result = sh("deploy-releases.sh", "record", releases, log, "line", release, "", 5)
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith(f"deploy-releases.sh: {says} "), result.stderr
    assert result.stderr.count("\n") == 1


def test_an_unknown_action_is_refused(tmp_path):
    result = sh("deploy-releases.sh", "prune", tmp_path)
    assert result.returncode == 2 and "unknown action prune" in result.stderr


# --- deploy-restart.sh with a stand-in systemctl ------------------------------------------


# A systemctl that logs its calls and fails on bad.service; every unit has NRestarts=3 (it
# crash-looped) until reset-failed zeroes the counts, as systemd's does.
FAKE_SYSTEMCTL = """#!/bin/sh
echo "$*" >> "$CALLS"
count=3
if grep -q '^reset-failed' "$CALLS"; then count=0; fi
case "$1" in
  show) for u; do case "$u" in *.service) echo "$count";; esac; done ;;
  restart|stop|start) [ "$2" != bad.service ] || { echo "$2 failed" >&2; exit 1; } ;;
esac
"""


@pytest.fixture
def systemctl(tmp_path):
    """(env with the fake systemctl first on PATH, the file its calls go to)."""
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    fake.write_text(FAKE_SYSTEMCTL)
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    return {"PATH": f"{fake.parent}:/usr/bin:/bin", "CALLS": str(calls)}, calls


def restart_script(tmp_path: Path, env: dict, verb: str, *units: str, waited: int = -1):
    return sh(
        "deploy-restart.sh",
        tmp_path / ".restart.log",
        verb,
        len(units) if waited < 0 else waited,
        *units,
        env=env,
    )


def test_restart_prints_the_baseline_then_restarts_every_unit(tmp_path, systemctl):
    env, calls = systemctl
    units = ["a.service", "b.service", "c.service"]
    result = restart_script(tmp_path, env, "restart", *units)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    # The baseline is read after reset-failed (which zeroes NRestarts: read before it, the
    # first three restarts of a crash-looping release would go unseen) and before the restart.
    assert first == '{"restarts_before": [0, 0, 0]}'
    assert parse_restarts_before(units, first) == dict.fromkeys(units, 0)
    lines = calls.read_text().splitlines()
    assert lines[0] == "reset-failed a.service b.service c.service"
    assert lines[1] == "show -p NRestarts --value a.service b.service c.service"
    assert sorted(lines[2:]) == [f"restart {u}" for u in units]


def test_restart_waits_only_for_the_first_units(tmp_path, systemctl):
    """The workers after WAITED are restarted too (their count in the baseline), but neither
    their output nor their failure is the script's: their settle check judges them."""
    env, calls = systemctl
    result = restart_script(tmp_path, env, "restart", "a.service", "bad.service", waited=1)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['{"restarts_before": [0, 0]}']
    deadline = time.monotonic() + 5
    while "restart bad.service" not in calls.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(calls.read_text().splitlines()[2:]) == [
        "restart a.service",
        "restart bad.service",
    ]
    while "failed" not in (tmp_path / ".restart.log.more").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_restart_fails_if_one_unit_fails_and_says_which(tmp_path, systemctl):
    env, calls = systemctl
    result = restart_script(tmp_path, env, "stop", "a.service", "bad.service")
    assert result.returncode == 1
    assert "bad.service failed" in result.stdout
    assert "stop a.service" in calls.read_text()


# --- deploy-candidate.sh with a stand-in systemctl ------------------------------------------


def candidate_script(tmp_path: Path, env: dict, verb: str, release: str = "", count: int = 2):
    return candidate_run(env, verb, tmp_path, release, count, "c1.service", "c2.service")


def candidate_run(env: dict, *args: object) -> subprocess.CompletedProcess[str]:
    return sh("deploy-candidate.sh", *args, env=env)


@pytest.mark.parametrize("left", ["nothing", "link", "file"])
def test_candidate_start_stops_only_what_a_killed_run_can_have_left(tmp_path, systemctl, left):
    """The link is made before the units start and removed after they stopped: without it no
    candidate unit runs or is failed, so a clean start spends no stop and no reset."""
    env, calls = systemctl
    (tmp_path / "releases" / "r2").mkdir(parents=True)
    if left == "link":
        (tmp_path / "candidate").symlink_to("releases/r1")
    elif left == "file":
        (tmp_path / "candidate").write_text("")
    result = candidate_script(tmp_path, env, "start", "r2")
    assert result.returncode == 0, result.stderr
    assert os.readlink(tmp_path / "candidate") == "releases/r2"
    lines = calls.read_text().splitlines()
    started = sorted(lines[-2:])
    assert started == ["start c1.service", "start c2.service"]
    before = lines[:-2]
    if left == "nothing":
        assert before == []
    else:
        assert sorted(before[:2]) == ["stop c1.service", "stop c2.service"]
        assert before[2:] == ["reset-failed c1.service c2.service"]


def test_candidate_stop_stops_resets_and_removes_the_link(tmp_path, systemctl):
    env, calls = systemctl
    (tmp_path / "candidate").symlink_to("releases/r1")
    assert candidate_script(tmp_path, env, "stop").returncode == 0
    assert not (tmp_path / "candidate").is_symlink()
    lines = calls.read_text().splitlines()
    assert sorted(lines[:2]) == ["stop c1.service", "stop c2.service"]
    assert lines[2:] == ["reset-failed c1.service c2.service"]
    calls.unlink()
    assert candidate_script(tmp_path, env, "stop").returncode == 0  # nothing left: no calls
    assert not calls.exists()


def test_a_candidate_unit_that_cannot_start_fails_the_start(tmp_path, systemctl):
    env, _ = systemctl
    (tmp_path / "releases" / "r2").mkdir(parents=True)
    units = ("c1.service", "bad.service")
    result = candidate_run(env, "start", tmp_path, "r2", 2, *units)
    assert result.returncode == 1


def test_only_the_release_s_port_types_start_but_every_candidate_stops(tmp_path, systemctl):
    """A release without an `airflow` process: its candidate is stopped (a killed deploy of
    another release may have left it), never started."""
    env, calls = systemctl
    (tmp_path / "releases" / "r2").mkdir(parents=True)
    (tmp_path / "candidate").symlink_to("releases/r1")
    result = candidate_script(tmp_path, env, "start", "r2", count=1)
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines()
    assert sorted(lines[:2]) == ["stop c1.service", "stop c2.service"]
    assert lines[2:] == ["reset-failed c1.service c2.service", "start c1.service"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"restarts_before": [0, 3, 1]}', {"u1": 0, "u2": 3, "u3": 1}),
        ('{"restarts_before": [2]}', {"u1": 2}),  # systemctl said less: the rest never restarted
        ('{"restarts_before": []}', {}),
    ],
)
def test_restarts_before(line, expected):
    assert parse_restarts_before(["u1", "u2", "u3"], line) == expected


@pytest.mark.parametrize(
    "line", ["", "restarts-before: 0 3", '{"restarts_before": ["3"]}', '{"other": []}', "[1]"]
)
def test_an_unreadable_restart_answer_is_one_clear_error(line):
    with pytest.raises(StagingError, match=r"deploy-restart\.sh: unreadable answer"):
        parse_restarts_before(["u1"], line)


# --- lock-guard.sh and lock-hold.sh ------------------------------------------------------


def test_a_guarded_command_runs_only_while_the_token_is_ours(tmp_path):
    path = str(tmp_path / ".deploy.lock")
    Path(slot_lock.holder_path(path)).write_text("tok-1 me on here (pid 1) at then\n")
    ours = run(slot_lock.guarded(path, "tok-1", 'echo "ran $0"; exit 3'))
    assert (ours.returncode, ours.stdout.strip()) == (3, "ran sh")
    theirs = run(slot_lock.guarded(path, "tok-2", "echo ran"))
    assert theirs.returncode == slot_lock.LOST and theirs.stdout == ""
    assert theirs.stderr.strip() == f"{slot_lock.LOST_MARK} me on here (pid 1) at then"


def test_a_guarded_script_gets_its_words_as_arguments_never_as_text(tmp_path):
    """lock-guard.sh runs PROGRAM ARG... as given: a script's values (a branch may hold any
    character) reach it as its $1..., and nothing in them is run."""
    path = str(tmp_path / ".deploy.lock")
    Path(slot_lock.holder_path(path)).write_text("tok-1 me\n")
    value = 'x"; touch "$PWNED"; $(touch "$PWNED") `touch "$PWNED"` \\ \'q\''
    release = tmp_path / value
    release.mkdir()
    command = script_command("deploy-mark-bad.sh", str(release))
    guarded = slot_lock.guarded(path, "tok-1", command)
    words = shlex.split(guarded)
    assert words[words.index("--") + 1 :] == list(command.argv)
    assert run(guarded, env={**os.environ, "PWNED": str(tmp_path / "pwned")}).returncode == 0
    assert (release / ".bad").exists() and not (tmp_path / "pwned").exists()
    bad = run(script_command("lock-guard.sh", slot_lock.holder_path(path), "tok-1", 1, 74, "M"))
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_the_holder_takes_the_lock_writes_its_token_and_note_and_leaves_on_eof(tmp_path):
    path = str(tmp_path / ".deploy.lock")
    note = {"holder": "me", "host": "here", "pid": 7, "started": "2026-01-01T00:00:00+00:00"}
    # Our stdin plays the SSH channel: the lock is held until it closes.
    holder = subprocess.Popen(
        ["sh", "-c", slot_lock.lock_script(path, note, "tok-9")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "LOCKED"
    written = Path(slot_lock.note_path(path)).read_text()
    assert written.startswith('{"holder": "me", "host": "here", "pid": 7, ')
    assert re.search(r', "remote_pid": \d+}$', written)
    assert Path(slot_lock.holder_path(path)).read_text() == (
        "tok-9 me on here (pid 7) at 2026-01-01T00:00:00+00:00\n"
    )
    busy = run(slot_lock.lock_script(path, note))
    assert busy.returncode == slot_lock.BUSY
    assert busy.stdout.splitlines()[0] == "BUSY" and '"remote_pid"' in busy.stdout
    holder.stdin.close()
    assert holder.wait(5) == 0
    assert not Path(slot_lock.note_path(path)).exists()


# --- deploy-fetch.sh against a local repository -----------------------------------------


def test_fetch_clones_the_mirror_once_and_reads_the_branch(tmp_path):
    repo = tmp_path / "repo"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    base = tmp_path / "base"
    mirror = base / "repo.git"

    def fetch(branch: str):
        ref = f"refs/heads/{branch}^{{commit}}"
        return sh("deploy-fetch.sh", base, mirror, f"{mirror}.lock", repo, ref, NOT_FOUND)

    first = fetch("main")
    assert first.returncode == 0
    assert parse_fetch(first.stdout) == Fetched(head.strip(), {})
    assert mirror.is_dir() and not Path(f"{mirror}.tmp").exists()
    (repo / "Procfile").write_text('web: echo "a \\ b"\n')
    subprocess.run([*git, "add", "Procfile"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "two"], check=True)
    again = sh(
        "deploy-fetch.sh",
        base,
        mirror,
        f"{mirror}.lock",
        repo,
        "refs/heads/main^{commit}",
        NOT_FOUND,
        "Procfile",
        "app.json",
    )
    assert again.returncode == 0 and len(again.stdout.splitlines()) == 1
    fetched = parse_fetch(again.stdout)
    assert fetched.commit != head.strip()
    assert fetched.files == {"Procfile": 'web: echo "a \\ b"\n', "app.json": None}
    assert fetch("nope").returncode == NOT_FOUND


@pytest.mark.parametrize("out", ["", "abc\nnone Procfile\n", '{"commit": 1}', '{"files": {}}'])
def test_an_unreadable_fetch_answer_is_one_clear_error(out):
    with pytest.raises(StagingError, match=r"deploy-fetch\.sh: unreadable answer"):
        parse_fetch(out)


# --- deploy-restart.sh: a served port drained, then the exit cut short ---------------------

# A server that, on SIGTERM, stops listening (its last request answered) and then takes 30 s
# to exit, as a big interpreter's teardown does; it writes `exited` if it ever gets there.
SLOW_EXIT_SERVER = """
import signal, socket, sys, time
listener = socket.create_server(("127.0.0.1", 0))
open(sys.argv[1] + "/port", "w").write(str(listener.getsockname()[1]))
def term(*_):
    listener.close()
    time.sleep(30)
    open(sys.argv[1] + "/exited", "w").write("")
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
while True:
    time.sleep(0.1)
"""

# systemctl for one unit: `show -p MainPID` names the server, `stop` signals it and waits for
# it to be gone (as systemd does, up to TimeoutStopSec).
STOPPING_SYSTEMCTL = """#!/bin/sh
echo "$*" >> "$CALLS"
case "$1" in
  show) echo "MainPID=$(cat "$SERVER_PID")" ;;
  stop)
    pid=$(cat "$SERVER_PID")
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null && [ "$(cut -d' ' -f3 /proc/$pid/stat)" != Z ]; do
      sleep 0.05
    done ;;
esac
"""


def test_a_drained_unit_has_its_slow_exit_killed_once_its_port_is_free(tmp_path):
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    fake.write_text(STOPPING_SYSTEMCTL)
    fake.chmod(0o755)
    server = subprocess.Popen([sys.executable, "-c", SLOW_EXIT_SERVER, str(tmp_path)])
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "port").exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        (tmp_path / "pid").write_text(str(server.pid))
        port = (tmp_path / "port").read_text()
        env = {
            "PATH": f"{fake.parent}:/usr/bin:/bin",
            "CALLS": str(tmp_path / "calls"),
            "SERVER_PID": str(tmp_path / "pid"),
        }
        result = restart_script(tmp_path, env, "stop", f"app.service={port}")
        assert result.returncode == 0, result.stderr
        # Killed once it stopped listening, not waited for through its 30 s exit.
        assert server.wait(timeout=5) == -signal.SIGKILL
        assert not (tmp_path / "exited").exists()
        assert "reset-failed app.service" in (tmp_path / "calls").read_text()
    finally:
        server.kill()
        server.wait()


def test_a_unit_without_a_port_is_waited_for(tmp_path, systemctl):
    env, calls = systemctl
    result = restart_script(tmp_path, env, "stop", "a.service")
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines()
    assert "stop a.service" in lines
    assert not [line for line in lines if "MainPID" in line]  # nothing to drain


# --- deploy-restart.sh: the workers' restart is not waited for ------------------------------

# systemctl whose restart of worker.service waits for the test's go (a scheduler slow to
# stop); every other call returns at once.
SLOW_WORKER_SYSTEMCTL = """#!/bin/sh
echo "$*" >> "$CALLS"
case "$1 $2" in
  "restart worker.service") while [ ! -e "$DIR/go" ]; do sleep 0.02; done ;;
esac
"""


def test_the_workers_restart_is_not_waited_for_and_says_when_it_is_done(tmp_path):
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    fake.write_text(SLOW_WORKER_SYSTEMCTL)
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "CALLS": str(tmp_path / "calls")}
    env["DIR"] = str(tmp_path)
    done = tmp_path / ".restart.log.more.done"
    try:
        result = restart_script(
            tmp_path, env, "restart", "web.service=1", "worker.service", waited=1
        )
        # Back while the worker's restart still waits for its go: not done, no clock yet.
        assert result.returncode == 0, result.stderr
        assert "restart web.service" in (tmp_path / "calls").read_text()
        assert not done.exists()
    finally:
        (tmp_path / "go").touch()
    deadline = time.monotonic() + 10
    # (A file the shell has made but `date` not yet written reads as not done, as it does for
    # heartbeat.workers_restarted.)
    while not (done.exists() and done.read_text().strip()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # The droplet's clock once it was done: what the workers' settle and heartbeats count from.
    assert abs(float(done.read_text()) - time.time()) < 10
