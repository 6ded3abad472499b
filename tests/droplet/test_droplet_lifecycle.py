"""The droplet is a real Debian 12 machine: systemd as PID 1, SSH at its own address, apt
through our proxy; `down` leaves nothing behind, a crashed one is cleaned up by the next
`up`, and a directory that is not a droplet's is refused."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import devtools.droplet as droplet_mod
from devtools.droplet import machine, proc
from staging_ops.inventory import load_inventory
from staging_ops.remote import connect
from tests.conftest import run_invoke
from tests.droplet.conftest import droplet_dir


def test_systemd_is_pid_1_and_the_boot_finished(droplet):
    assert droplet_mod.run(droplet, ["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
    state = droplet_mod.run(droplet, ["systemctl", "is-system-running"])
    assert state.stdout.strip() == "running", state.stdout + state.stderr


def test_ssh_as_root_with_the_generated_key_at_the_droplets_own_address(droplet):
    host = load_inventory(droplet.inventory_path).hosts[droplet.name]
    assert (host.address, host.port, host.user) == (droplet.address, 22, "root")
    remote = connect(host)
    try:
        _, out, _ = remote.run("id -u; hostname; ip -4 -br addr show host0")
    finally:
        remote.close()
    uid, hostname, address_line = out.strip().splitlines()
    assert (uid, hostname) == ("0", droplet.name)
    assert f"{droplet.address}/24" in address_line


def test_the_droplets_host_keys_are_recorded_from_its_disk(droplet):
    """The connection above checked the host key: `up` recorded the keys the droplet made at
    its first boot in the known_hosts file its inventory names, every one of them."""
    host = load_inventory(droplet.inventory_path).hosts[droplet.name]
    assert host.known_hosts == str(droplet.known_hosts_path)
    inside = droplet_mod.run(
        droplet, "for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf $k; done"
    ).stdout
    recorded = subprocess.run(
        ["ssh-keygen", "-lf", str(droplet.known_hosts_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert len(inside.splitlines()) >= 3  # ed25519, ecdsa and rsa: ssh-keygen -A's
    assert sorted(line.split()[1] for line in recorded.splitlines()) == sorted(
        line.split()[1] for line in inside.splitlines()
    )
    assert {line.split()[0] for line in droplet.known_hosts_path.read_text().splitlines()} == {
        droplet.address
    }


def test_a_fresh_droplet_has_nothing_preinstalled_and_no_apt_lists(droplet):
    missing = droplet_mod.run(droplet, "for c in nginx git psql; do command -v $c; done")
    assert missing.stdout == ""
    lists = droplet_mod.run(droplet, ["ls", "/var/lib/apt/lists"]).stdout.split()
    assert [name for name in lists if name not in ("lock", "partial")] == []


def test_status_and_env_point_at_the_droplet(droplet):
    result = run_invoke("droplet.status", "--dir", droplet.dir, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"system": "running"' in result.stdout
    env = subprocess.run(
        ["bash", "-c", f"source {droplet.env_path} && env"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"STAGING_INVENTORY={droplet.inventory_path}" in env
    assert f"STAGING_REGISTRY_DSN={droplet.registry_dsn}" in env
    assert f"STAGING_SANDBOX_REPO={droplet.repo_path}" in env
    inventory = load_inventory(droplet.inventory_path)
    assert inventory.app.repo_url == droplet.repo_url
    assert droplet_mod.run(droplet, ["test", "-d", droplet.repo_url]).returncode == 0


def leftovers(box: droplet_mod.Droplet, pids: dict[str, int]) -> list[str]:
    """Everything of `box` that is still there after `down`."""
    found = [
        f"mount {line.split()[1]}"
        for line in Path("/proc/mounts").read_text().splitlines()
        if box.dir in line
    ]
    found += [f"cgroup {d}" for d in proc.cgroup_dirs(box.cgroup)]
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    found += [f"link {name}" for name in (box.bridge, box.veth) if re.search(rf"\b{name}\b", links)]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and box.dir in proc.command_line(int(entry.name)):
            found.append(f"process {entry.name}: {proc.command_line(int(entry.name))!r}")
    found += [f"{name} {pid}" for name, pid in pids.items() if proc.alive(pid)]
    return found


def test_a_second_droplet_reboots_survives_a_crash_and_goes_down_without_a_trace(droplet):
    """One extra up/down cycle (the session droplet runs alongside, on its own bridge):
    apt reaches the archive through the proxy, a reboot comes back at the same address,
    a crash (supervisor and nspawn killed, mounts left) is cleaned up by the next `up`."""
    directory = droplet_dir("staging-ops-droplet2-")
    try:
        box = droplet_mod.up(directory, name="d2")
        assert box.address != droplet.address
        update = droplet_mod.run(box, ["apt-get", "update", "-q"], timeout=300)
        assert update.returncode == 0, update.stdout + update.stderr
        droplet_mod.run(box, "echo kept > /root/marker")

        droplet_mod.reboot(box)
        assert droplet_mod.run(box, ["cat", "/root/marker"]).stdout == "kept\n"
        machine.wait_ssh(box.address, 5)

        # The crash: the supervising loop and nspawn die; the container, mount, cgroups,
        # bridge, proxy and PostgreSQL are left behind.
        launcher = box.pids["launcher"]
        nspawn = proc.children(launcher)
        for pid in [launcher, *nspawn]:
            os.kill(pid, signal.SIGKILL)
        stale = dict(box.pids)
        box = droplet_mod.up(directory, name="d2")
        assert not any(proc.alive(pid) for pid in stale.values())
        assert droplet_mod.run(box, ["systemctl", "is-system-running"]).stdout.strip() == (
            "running"
        )
        # A new up is a fresh droplet: a new overlay over the base, nothing of the old one.
        assert droplet_mod.run(box, ["test", "-e", "/root/marker"]).returncode != 0

        pids = dict(box.pids)
        start = time.monotonic()
        result = run_invoke("droplet.down", "--dir", str(directory))
        assert result.returncode == 0, result.stdout + result.stderr
        assert time.monotonic() - start < 20
        assert leftovers(box, pids) == []
        # The session droplet is not touched by another's down.
        assert droplet_mod.run(droplet, ["systemctl", "is-system-running"]).stdout.strip() == (
            "running"
        )
    finally:
        droplet_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)


def test_a_directory_that_is_not_a_droplets_is_refused_untouched(tmp_path):
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    result = run_invoke("droplet.up", "--dir", str(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "not empty and holds no droplet" in result.stderr
    assert keep.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("state", ['{"dir": "/", "hosts": []}', "not json"])
def test_a_foreign_state_json_is_refused_by_up_down_and_status(tmp_path, state):
    (tmp_path / "state.json").write_text(state)
    for task in ("droplet.up", "droplet.down", "droplet.status"):
        result = run_invoke(task, "--dir", str(tmp_path))
        assert result.returncode == 2, result.stdout + result.stderr
    assert (tmp_path / "state.json").read_text() == state


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--bind", "no-colon"), "--bind must be HOST_DIR:PATH, not 'no-colon'"),
        (("--bind", "/:/etc/x"), "bind target '/etc/x' must be a plain path under /srv"),
        (("--repo", "/"), "droplet: / is not a bare git repository (no HEAD)"),
    ],
)
def test_a_bad_bind_or_repository_is_refused_before_anything(tmp_path, args, says):
    directory = tmp_path / "droplet"
    result = run_invoke("droplet.up", "--dir", str(directory), *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not directory.exists()
