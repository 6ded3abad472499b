"""A deploy whose SSH connection is cut for real after the switch (the sandbox's sshd child
serving it killed, at restart and at verify): it reconnects and finishes its rollback; or, when
the host stays unreachable (sshd frozen), it says in one line what `current` points to and how
to restore the last verified release, and the next deploy notices the unverified release.
Cut during `record`, it reconnects and finishes the record once (`.ok`, one deploys.log line);
lost for good there, it says the release serves verified but unrecorded, and the registry
records it all the same."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import inventory_variant, run_invoke
from tests.sandbox.deploying import (
    commit_of,
    deploy,
    push_app_variant,
    releases,
    served,
    start_deploy,
    wait_served,
)
from tests.sandbox.slots import slot_for

SLOT = slot_for(__name__)
TASK = f"JA-{SLOT}"


@pytest.fixture(scope="module")
def box(sandbox, provisioned):
    first = deploy(sandbox, "feat-x", SLOT)
    assert first.returncode == 0, first.stdout + first.stderr
    return sandbox


def sshd_pid(box) -> int:
    return box.pids["h1:sshd"]


def cut_connections(box) -> None:
    """Kill every sshd child of the sandbox's sshd: each serves one connection, the deploy's."""
    children = subprocess.run(
        ["pgrep", "-P", str(sshd_pid(box))], capture_output=True, text=True, check=False
    ).stdout.split()
    assert children, "no SSH connection to cut"
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)


def push_slow_branch(box) -> str:
    """A branch whose UI answers only 3 s after it starts: verify is under way meanwhile."""
    needle = "    config = read_ui_config()\n    serve(\n"
    return push_app_variant(box, "slow-start", needle, '    __import__("time").sleep(3)\n')


def push_slow_stop_branch(box) -> str:
    """A branch whose servers take 2 s to stop: a hand-over away from it (the main instance's
    restart) lasts that long, so a cut when the switch's line is printed lands in it."""
    return push_app_variant(
        box, "slow-stop", "        callback()\n", '        __import__("time").sleep(2)\n'
    )


def deploy_cut_after(
    box, step: str, branch: str = "main", env: dict | None = None, freeze: bool = False
):
    """Deploy `branch`, cutting its connection as soon as `step`'s line is printed (the next step
    is running); `freeze` also stops sshd from answering new connections until the end."""
    process = start_deploy(box, branch, SLOT, env=env)
    lines = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.split()[1:2] == [step]:
                if freeze:
                    os.kill(sshd_pid(box), signal.SIGSTOP)
                cut_connections(box)
                break
        out, err = process.communicate(timeout=120)
    finally:
        if freeze:
            os.kill(sshd_pid(box), signal.SIGCONT)
    return process.returncode, "".join(lines) + out, err


def release_of(box, commit: str) -> Path:
    return next(p for p in reversed(releases(box, SLOT)) if p.name.endswith(commit[:7]))


@pytest.mark.parametrize(
    ("after", "lost_in"), [("switch", "hand-over"), ("hand-over", "main verify")]
)
def test_a_connection_cut_after_the_switch_is_regained_and_rolled_back(box, after, lost_in):
    # What serves stops slowly, so the hand-over (its restart) outlasts the cut's latency.
    good = push_slow_stop_branch(box)
    assert deploy(box, "slow-stop", SLOT).returncode == 0
    commit = push_slow_branch(box)
    code, out, err = deploy_cut_after(box, after, "slow-start")
    assert code == 1, out + err
    assert f"connection lost during {lost_in}, regained" in err, out + err
    assert "rolled back to" in err and "left unverified" in err and "Traceback" not in err
    assert " reconnect " in out and "regained after" in out
    assert wait_served(box, SLOT) == good
    new = release_of(box, commit)
    assert not (new / ".ok").exists() and not (new / ".bad").exists()  # not its fault
    row = run_invoke("status", "--json", "--no-health", env=box.env()).stdout
    assert f'"commit": "{good}"' in row


def test_a_host_that_stays_unreachable_gets_one_line_and_the_next_deploy_notices(
    box, tmp_path: Path
):
    assert deploy(box, "feat-x", SLOT).returncode == 0
    good = release_of(box, commit_of(box, "feat-x")).name
    quick = inventory_variant(box, tmp_path, ("connect_timeout = 10", "connect_timeout = 1"))
    commit = push_slow_branch(box)
    code, out, err = deploy_cut_after(
        box, "hand-over", "slow-start", env={"STAGING_INVENTORY": str(quick)}, freeze=True
    )
    assert code == 1, out + err
    assert err.strip().count("\n") == 0, err  # one line
    new = release_of(box, commit).name
    assert f"`current` points to {new}, not verified" in err, err
    assert "connection to h1 lost during main verify, not regained after 3 tries" in err, err
    command = re.search(r"restore the last verified one: (invoke rollback .*)$", err.strip())
    assert command, err
    assert command.group(1) == f"invoke rollback --slot {SLOT} --to {good} --task {TASK}"
    # The failed run is history, though what serves could not be read.
    failed = run_invoke("history", "--slot", str(SLOT), "--limit", "3", env=box.env()).stdout
    assert "deploy failed" in failed and "reconnect failed; serving unknown" in failed, failed
    # `invoke verify` and the next deploy see the unverified release live and say so.
    verified = run_invoke("verify", "--slot", str(SLOT), env=box.env())
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert f"current points to {new}, never verified" in verified.stdout, verified.stdout
    again = deploy(box, "main", SLOT)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(rf"warn +check live .*{new} serves but was never verified", again.stdout)
    # The printed command restores the last verified release.
    restored = run_invoke(*shlex.split(command.group(1))[1:], env=box.env())
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert served(box, SLOT) == commit_of(box, "feat-x")


def other_branch(box) -> str:
    """feat-x or main, whichever does not serve now: a deploy of it changes the commit."""
    return "main" if served(box, SLOT) == commit_of(box, "feat-x") else "feat-x"


def deploy_cut_during_record(box, branch: str, env: dict | None = None, freeze: bool = False):
    """Deploy `branch`, its connection cut while the `record` command runs on the droplet.

    Once main verify passed (earlier steps read the slot's deploys.log too), the log is made a
    FIFO, so `record` blocks on it (it reads the log before appending): the cut lands inside
    that command, not before or after it. The log is
    put back, and the cut command's processes (orphaned on the droplet) killed, so only the
    deploy's own retry can finish the record."""
    log = box.hosts[0].root / f"srv/staging/staging-{SLOT}/deploys.log"
    before = log.read_bytes() if log.exists() else b""
    process = start_deploy(box, branch, SLOT, env=env)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:  # earlier steps read the log too (is a release verified?)
        lines.append(line)
        if re.match(r"\s*ok +main verify ", line):
            break
    # The scheduler's step (0.5 s at least) runs now, then record.
    log.unlink(missing_ok=True)
    os.mkfifo(log)
    try:
        deadline = time.monotonic() + 90
        while not on_log(f"grep -qxF -- .* {log}") and process.poll() is None:
            assert time.monotonic() < deadline, "the record step never reached the droplet"
            time.sleep(0.05)
        time.sleep(0.2)  # grep is opening the FIFO: it blocks there until killed
        stuck = on_log(str(log))  # grep, the record's shell and the lock guard's
        assert stuck, process.communicate()
        if freeze:
            os.kill(sshd_pid(box), signal.SIGSTOP)
        restored = log.with_name("deploys.log.restored")
        restored.write_bytes(before)
        os.replace(restored, log)  # the FIFO gone: a retry finds the log as it was
        cut_connections(box)
        for pid in stuck:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        out, err = process.communicate(timeout=120)
    finally:
        if freeze:
            os.kill(sshd_pid(box), signal.SIGCONT)
        if log.is_fifo():
            log.unlink()
            log.write_bytes(before)
        if process.poll() is None:
            process.kill()
    return process.returncode, "".join(lines) + out, err


def on_log(pattern: str) -> list[str]:
    """The pids of the droplet's processes whose command line matches `pattern`."""
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    return found.stdout.split()


def registry_row(box) -> dict:
    rows = json.loads(run_invoke("status", "--json", "--no-health", env=box.env()).stdout)
    return next(r for r in rows if r["slot"] == SLOT)


def test_a_connection_cut_during_record_is_regained_and_the_record_finished(box):
    branch = other_branch(box)
    commit = commit_of(box, branch)
    code, out, err = deploy_cut_during_record(box, branch)
    assert code == 0, out + err
    assert re.search(r"ok +reconnect .*regained after 1 try", out), out
    assert re.search(r"ok +record ", out) and "Traceback" not in err, out + err
    new = release_of(box, commit)
    assert (new / ".ok").exists()
    lines = (new.parent.parent / "deploys.log").read_text().splitlines()
    assert [line for line in lines if line.endswith(f" {new.name}")] == [lines[-1]]  # once
    verified = run_invoke("verify", "--slot", str(SLOT), env=box.env())
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert served(box, SLOT) == commit
    row = registry_row(box)
    assert (row["status"], row["task"], row["commit"]) == ("claimed", TASK, commit), row


def test_a_host_lost_for_good_during_record_says_what_serves_and_the_registry_has_it(
    box, tmp_path: Path
):
    branch = other_branch(box)
    commit = commit_of(box, branch)
    quick = inventory_variant(box, tmp_path, ("connect_timeout = 10", "connect_timeout = 1"))
    code, out, err = deploy_cut_during_record(
        box, branch, env={"STAGING_INVENTORY": str(quick)}, freeze=True
    )
    assert code == 1, out + err
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err  # one line
    new = release_of(box, commit).name
    assert (
        f"connection to h1 lost during record, not regained after 3 tries: `current` points to "
        f"{new}, verified but not recorded on the droplet" in err
    ), err
    assert f"the registry records {branch}@{commit[:12]}" in err, err
    assert served(box, SLOT) == commit
    row = registry_row(box)
    assert (row["status"], row["task"], row["commit"]) == ("claimed", TASK, commit), row
    events = json.loads(
        run_invoke("history", "--slot", str(SLOT), "--json", "--limit", "1", env=box.env()).stdout
    )
    assert events[0]["action"] == "deploy", events  # a deploy, not a failed one
    # verify sees what the droplet lacks; the printed command records it.
    verified = run_invoke("verify", "--slot", str(SLOT), env=box.env())
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert f"current points to {new}, never verified" in verified.stdout, verified.stdout
    command = re.search(r"record it: (invoke rollback [^;]*);", err)
    assert command, err
    assert command.group(1) == f"invoke rollback --slot {SLOT} --to {new} --task {TASK}"
    restored = run_invoke(*shlex.split(command.group(1))[1:], env=box.env())
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert run_invoke("verify", "--slot", str(SLOT), env=box.env()).returncode == 0
    assert served(box, SLOT) == commit
