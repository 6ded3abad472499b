"""The deploy lock's fencing token and its takeover, on the real sandbox droplet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from staging_ops import output
from staging_ops.deploy import lock as slot_lock
from staging_ops.deploy import restart, switch
from staging_ops.deploy.session import Deployer
from staging_ops.inventory import Inventory, load_inventory
from staging_ops.remote import RemoteHost, connect
from staging_ops.slot_layout import SlotPaths
from tests.conftest import inventory_as
from tests.sandbox.slots import slot_for

SLOT = slot_for(__name__)
OLD = "2000-01-01T00:00:00+00:00"


def slot_of(inventory: Inventory):
    slot = inventory.slots[SLOT]
    host = inventory.host_of(slot)
    return host, slot, SlotPaths(host, slot)


def take_over(session: RemoteHost, path: str, name: str, operator: str) -> slot_lock.SlotLock:
    """Takes the lock as a second deploy that finds it held past a (short) timeout."""
    time.sleep(1.1)  # the holder's note has whole seconds: make it older than 0.5 s
    lock = slot_lock.acquire(session, path, name, 0.5, operator)
    assert lock.warning and "took over the deploy lock of" in lock.warning
    return lock


def test_a_taken_over_holder_is_fenced_out_and_the_new_one_runs(sandbox, provisioned):
    host, slot, paths = slot_of(load_inventory(sandbox.inventory_path))
    old_ran, new_ran = Path(paths.root, ".old-ran"), Path(paths.root, ".new-ran")
    old_ran.unlink(missing_ok=True)
    new_ran.unlink(missing_ok=True)
    old_session, new_session = connect(host), connect(host)
    old = slot_lock.acquire(old_session, paths.lock, slot.identifier, 600, "slow@old")
    try:
        # Still ours: the guarded command runs.
        assert old.run(old_session, "echo mine")[1].strip() == "mine"
        new = take_over(new_session, paths.lock, slot.identifier, "fresh@new")
        try:
            with pytest.raises(
                slot_lock.LockLost,
                match=rf"^staging-{SLOT}: the slot's lock was taken over by fresh@new on .+ "
                r"\(pid \d+\) at 20\d\d-.+; this deploy stops$",
            ):
                old.run(old_session, f"touch {old_ran}")
            assert not old_ran.exists()
            new.run(new_session, f"touch {new_ran}")
            assert new_ran.exists()
        finally:
            new.release()
        # Released by the new holder: still not the old one's.
        with pytest.raises(slot_lock.LockLost):
            old.run(old_session, f"touch {old_ran}")
        assert not old_ran.exists()
    finally:
        old.release()
        old_session.close()
        new_session.close()
        new_ran.unlink(missing_ok=True)


def test_a_guarded_command_does_not_pass_the_fence_on_to_what_it_starts(sandbox, provisioned):
    """A restart starts services that outlive the command: were the fence's fd theirs, every
    later guarded command (and lock) would wait on it."""
    host, slot, paths = slot_of(load_inventory(sandbox.inventory_path))
    session = connect(host)
    lock = slot_lock.acquire(session, paths.lock, slot.identifier, 600, "me@here")
    started = None
    try:
        _, out, _ = lock.run(session, "setsid sleep 60 > /dev/null 2>&1 < /dev/null & echo $!")
        started = int(out.strip())
        begun = time.monotonic()
        assert lock.run(session, "echo next")[1].strip() == "next"
        assert time.monotonic() - begun < 2
    finally:
        if started:
            os.kill(started, signal.SIGKILL)
        lock.release()
        session.close()


def test_a_deploy_whose_lock_was_taken_over_neither_switches_nor_restarts(sandbox, provisioned):
    inventory = load_inventory(sandbox.inventory_path)
    host, slot, paths = slot_of(inventory)
    before = os.readlink(paths.current) if os.path.lexists(paths.current) else None
    deployer = Deployer(inventory, slot, output.StepLog(quiet=True), "slow@old")
    deployer.open()
    taker_session = connect(host)
    try:
        taker = take_over(taker_session, paths.lock, slot.identifier, "fresh@new")
        try:
            with pytest.raises(slot_lock.LockLost, match="taken over by fresh@new on"):
                switch.switch(deployer, "20000101T000000Z-fenced")
            after = os.readlink(paths.current) if os.path.lexists(paths.current) else None
            assert after == before
            with pytest.raises(slot_lock.LockLost, match="this deploy stops"):
                restart.restart(deployer)
        finally:
            taker.release()
    finally:
        deployer.close()
        taker_session.close()


@pytest.mark.parametrize("use_pty", [False, True], ids=["sudo", "sudo-use_pty"])
def test_a_hung_holder_is_taken_over_through_sudo(sandbox, provisioned, os_user, tmp_path, use_pty):
    """Logged in as a sudoer, the holding shell is sudo's child: not a process-group leader,
    unless sudo runs it on a pty of its own (`Defaults use_pty`, not every droplet's)."""
    user = os_user(f"stagingops-lock{'-pty' if use_pty else ''}", passwordless_sudo=True)
    rule = Path(f"/etc/sudoers.d/{user}")  # removed with the user
    rule.write_text(rule.read_text() + f"Defaults:{user} {'' if use_pty else '!'}use_pty\n")
    inventory = load_inventory(inventory_as(sandbox, user, tmp_path))
    host, slot, paths = slot_of(inventory)
    hung_session, session = connect(host), connect(host)
    assert hung_session.sudo
    note = {"holder": "stuck@elsewhere", "host": "far", "pid": 1, "started": OLD}
    # The real holder script, through sudo, as a deploy that hangs would leave it running.
    channel = hung_session.connection.client.get_transport().open_session()
    channel.exec_command(hung_session.as_root(slot_lock.lock_script(paths.lock, note)))
    try:
        assert channel.makefile("r").readline().strip() == "LOCKED"
        # The takeover kills the group the note names: the shell must lead it, or its `cat`
        # (which holds the lock's fd as well) outlives the kill.
        group = json.loads(Path(paths.lock + ".json").read_text())["remote_pid"]
        assert os.getpgid(group) == group
        lock = slot_lock.acquire(session, paths.lock, slot.identifier, 600, "taker")
        try:
            assert lock.warning and "took over the deploy lock of stuck@elsewhere" in lock.warning
            assert group_ends(group)  # the whole hung holder, not only its shell
        finally:
            lock.release()
    finally:
        channel.close()
        hung_session.close()
        session.close()
        wait_for_no_processes_of(user)


def group_ends(group: int, within: float = 2) -> bool:
    """Whether no process of the group is left (zombies included) within `within` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def wait_for_no_processes_of(user: str) -> None:
    """The user's sshd sessions end a moment after we close them; userdel refuses till then."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-u", user], capture_output=True).returncode != 0:
            return
        time.sleep(0.05)
