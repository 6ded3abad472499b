"""The sandbox droplet is real: sshd, PostgreSQL, nginx, the systemctl stand-in, git."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
import requests

from devtools import sandbox as sandbox_mod
from staging_ops.inventory import load_inventory
from staging_ops.remote import Unreachable, connect
from tests.conftest import TEST_PORT_BASE, run_invoke, sandbox_ports


def test_inventory_and_env_point_at_the_sandbox(sandbox):
    inventory = load_inventory(sandbox.inventory_path)
    assert sorted(inventory.slots) == list(range(1, 11))
    assert inventory.slots[4].ui_port == 5004 + sandbox.slot_port_offset
    assert inventory.hosts["production"].protected
    env = subprocess.run(
        ["bash", "-c", f"source {sandbox.env_path} && env"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"STAGING_INVENTORY={sandbox.inventory_path}" in env
    assert f"STAGING_SANDBOX_REPO={sandbox.repo_path}" in env
    assert f"STAGING_REGISTRY_DSN={sandbox.registry_dsn}" in env


def test_ssh_session_has_the_systemctl_stand_in_on_path(sandbox):
    inventory = load_inventory(sandbox.inventory_path)
    remote = connect(inventory.hosts["h1"])
    try:
        _, out, _ = remote.run("command -v systemctl; echo $HOME")
        systemctl, home = out.split()
        assert systemctl == f"{sandbox.hosts[0].dir}/bin/systemctl"
        assert home == f"{sandbox.hosts[0].dir}/home"
        assert remote.commands == 1
    finally:
        remote.close()


def test_real_unit_file_runs_under_the_stand_in_and_outlives_the_session(sandbox):
    host = sandbox.hosts[0]
    inventory = load_inventory(sandbox.inventory_path)
    port = TEST_PORT_BASE + 790
    unit = host.root / "etc/systemd/system/probe@.service"
    unit.write_text(f"""[Unit]
Description=probe %i
[Service]
WorkingDirectory={host.root}/srv
ExecStart=/usr/bin/python3 -m http.server --bind 127.0.0.1 {port}
Restart=on-failure
[Install]
WantedBy=multi-user.target
""")
    remote = connect(inventory.hosts["h1"])
    try:
        remote.run("systemctl daemon-reload && systemctl start probe@one.service")
    finally:
        remote.close()
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                assert requests.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert "probe@one" in sandbox_mod.status(sandbox.dir)["hosts"][0]["units"]
        remote = connect(inventory.hosts["h1"])
        _code, out, _ = remote.run("systemctl is-active probe@one.service", check=False)
        assert out.strip() == "active"
        remote.run("systemctl stop probe@one.service")
        remote.close()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
    finally:
        unit.unlink()


def test_postgres_is_real_and_slot_roles_need_a_password(sandbox):
    conn = psycopg2.connect(sandbox.registry_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_database(), version()")
            name, version = cur.fetchone()
        assert name == "staging_registry" and version.startswith("PostgreSQL ")
    finally:
        conn.close()
    with pytest.raises(psycopg2.OperationalError, match="password"):
        psycopg2.connect(
            host="127.0.0.1",
            port=sandbox.pg_port,
            user="nobody_here",
            dbname="postgres",
            connect_timeout=3,
        )


def test_bare_repository_has_the_sample_branches(sandbox):
    out = subprocess.run(
        ["git", "--git-dir", str(sandbox.repo_path), "branch", "--format", "%(refname:short)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert set(out.split()) >= {
        "main",
        "feat-x",
        "broken-start",
        "broken-version",
        "broken-migration",
        "new-deps",
    }


def test_nginx_runs_with_the_wildcard_certificate(sandbox):
    text = subprocess.run(
        ["openssl", "x509", "-in", str(sandbox.ca_path), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:*.justapply.net" in text
    host = sandbox.hosts[0]
    result = subprocess.run([*host.nginx_args(), "-t"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert sandbox_mod.status(sandbox.dir)["processes"]["h1:nginx"] is True


def test_sandbox_listens_only_on_loopback(sandbox):
    ports = {sandbox.pg_port} | {p for h in sandbox.hosts for p in (h.ssh_port,)}
    listening = subprocess.run(
        ["ss", "-Hltn"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for line in listening:
        local = line.split()[3]
        address, _, port = local.rpartition(":")
        if int(port) in ports:
            assert address == "127.0.0.1", line


def test_protected_host_is_never_connected_to(sandbox):
    inventory = load_inventory(sandbox.inventory_path)
    with pytest.raises(Exception, match="protected"):
        connect(inventory.hosts["production"])


def test_unreachable_host_fails_fast_with_a_clear_line(sandbox):
    import dataclasses

    host = dataclasses.replace(
        load_inventory(sandbox.inventory_path).hosts["h1"], port=1, connect_timeout=2
    )
    start = time.monotonic()
    with pytest.raises(Unreachable, match=r"cannot reach h1 \(127\.0\.0\.1:1\): "):
        connect(host)
    assert time.monotonic() - start < 3


def test_up_down_and_restart_after_a_crash(tmp_path):
    directory = Path(tempfile.mkdtemp(prefix="staging-ops-sbx2-"))
    directory.chmod(0o755)
    ports = sandbox_ports(100)
    try:
        box = sandbox_mod.up(directory, hosts=2, slots=4, ports=ports)
        assert set(box.pids) == {"postgres", "h1:nginx", "h1:sshd", "h2:nginx", "h2:sshd"}
        inventory = load_inventory(box.inventory_path)
        assert {s.host for s in inventory.slots.values()} == {"h1", "h2"}
        marker = box.path / "hosts" / "h1" / "home" / "stale-marker"
        marker.write_text("x")
        # A crash: sshd is killed, state is left behind; `up` cleans it and starts afresh.
        os.kill(box.pids["h1:sshd"], signal.SIGKILL)
        result = run_invoke("sandbox.status", "--dir", str(directory))
        assert result.returncode == 1 and "h1:sshd" in result.stdout and "stopped" in result.stdout
        box = sandbox_mod.up(directory, hosts=2, slots=4, ports=ports)
        assert not marker.exists()
        assert all(sandbox_mod.status(directory)["processes"].values())
        pids = dict(box.pids)
        result = run_invoke("sandbox.down", "--dir", str(directory))
        assert result.returncode == 0, result.stderr
        assert "stopped 5" in result.stdout
        for pid in pids.values():
            assert (
                not Path(f"/proc/{pid}").exists()
                or Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"
            )
        assert sandbox_mod.status(directory)["up"] is False
    finally:
        sandbox_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)


# --- `up` replaces only a sandbox, and only once its ports are free ----------------------------


def _a_checkout(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    files = [directory / "README.md", directory / ".git" / "HEAD", directory / "src" / "main.py"]
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("precious\n")
    return files


def test_up_refuses_a_directory_that_is_not_a_sandbox(tmp_path):
    checkout = tmp_path / "checkout"
    files = _a_checkout(checkout)
    with pytest.raises(sandbox_mod.BadInput, match="not empty and holds no sandbox"):
        sandbox_mod.up(checkout, ports=sandbox_ports(500))
    port_base = str(sandbox_ports(500).base)
    result = run_invoke("sandbox.up", "--dir", str(checkout), "--port-base", port_base)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().count("\n") == 0 and "refusing" in result.stderr
    assert all(path.read_text() == "precious\n" for path in files)
    # Neither a file, nor a directory whose state.json is not a sandbox's.
    with pytest.raises(sandbox_mod.BadInput, match="not a directory"):
        sandbox_mod.up(files[0], ports=sandbox_ports(500))
    (checkout / "state.json").write_text('{"name": "my-app"}')
    with pytest.raises(sandbox_mod.BadInput, match=r"state\.json is not a sandbox's"):
        sandbox_mod.up(checkout, ports=sandbox_ports(500))
    assert all(path.read_text() == "precious\n" for path in files)


def test_up_checks_its_ports_before_deleting_the_old_sandbox(tmp_path):
    ports = sandbox_ports(500)
    old = sandbox_mod.Sandbox(
        dir=str(tmp_path), pg_port=ports.postgres, slot_port_offset=0, slots=1, hosts=[]
    )
    old.save()
    marker = tmp_path / "keep-me"
    marker.write_text("x")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports.ssh(1)))
        busy.listen()
        with pytest.raises(sandbox_mod.BadInput, match=f"port 127.0.0.1:{ports.ssh(1)} is in use"):
            sandbox_mod.up(tmp_path, ports=ports)
    assert marker.read_text() == "x"
    assert sandbox_mod.load(tmp_path) is not None


# --- `down` stops only processes that are the sandbox's ----------------------------------------


def _spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(list(args), env=env, stdin=subprocess.DEVNULL)


def _running(process: subprocess.Popen) -> bool:
    return process.poll() is None


def test_down_spares_a_process_that_reused_a_recorded_pid(tmp_path):
    """A crashed sandbox leaves PIDs behind in state.json and the units' status files; a
    process started later that got one of those PIDs is not the sandbox's."""
    host = sandbox_mod.SandboxHost("h1", 1, 2, 3, str(tmp_path / "hosts" / "h1"))
    old = sandbox_mod.Sandbox(
        dir=str(tmp_path), pg_port=4, slot_port_offset=0, slots=1, hosts=[host]
    )
    old.started_at = time.time() - 60
    old.save()
    time.sleep(0.05)
    stranger = _spawn("sleep", "60")
    unit_stranger = _spawn("sleep", "60")
    try:
        old.pids = {"postgres": stranger.pid, "h1:nginx": stranger.pid}
        old.save()
        (host.root / "run").mkdir(parents=True)
        (host.root / "run" / "job-search-ui@staging-1.service.status").write_text(
            f"ActiveState=active\nMainPID={unit_stranger.pid}\n"
        )
        assert sandbox_mod.down(tmp_path) == []
        time.sleep(0.1)
        assert _running(stranger) and _running(unit_stranger)
        assert sandbox_mod.status(tmp_path)["processes"] == {}
    finally:
        for process in (stranger, unit_stranger):
            process.kill()
            process.wait()


def test_a_process_is_the_sandboxs_only_inside_its_directory(tmp_path):
    """DIR/x is not DIR3/x: the command line, or for the dashboard and the units its
    environment, must name a path inside the sandbox directory itself."""
    directory, neighbour = tmp_path / "x", tmp_path / "x3"
    host = sandbox_mod.SandboxHost("h1", 1, 2, 3, str(directory / "hosts" / "h1"))
    box = sandbox_mod.Sandbox(
        dir=str(directory), pg_port=4, slot_port_offset=0, slots=1, hosts=[host]
    )
    directory.mkdir()
    box.save()
    sleeper = "import time; time.sleep(60)"
    python = sys.executable
    base = {k: v for k, v in os.environ.items() if not k.startswith("STAGING_")}
    path = base.get("PATH", "/usr/bin:/bin")

    def dashboard(inventory: Path) -> subprocess.Popen:
        # The dashboard's command line (`python -m staging_ops.web ...`) names no path.
        return _spawn(
            python,
            "-c",
            sleeper,
            "-m",
            "staging_ops.web",
            env={**base, "STAGING_INVENTORY": str(inventory)},
        )

    ours = {
        "postgres": _spawn(python, "-c", sleeper, "-D", f"{directory}/pg/data"),
        "h1:nginx": _spawn(python, "-c", sleeper, f"--prefix={directory}/hosts/h1/root"),
        "dashboard": dashboard(directory / "inventory.toml"),
        "h1:probe@one": _spawn(
            python, "-c", sleeper, env={**base, "PATH": f"{directory}/hosts/h1/bin:{path}"}
        ),
    }
    not_ours = {
        "neighbour-postgres": _spawn(python, "-c", sleeper, "-D", f"{neighbour}/pg/data"),
        "nested": _spawn(python, "-c", sleeper, f"/srv{directory}/pg/data"),
        "the directory itself": _spawn(python, "-c", sleeper, str(directory)),
        "neighbour-dashboard": dashboard(neighbour / "inventory.toml"),
        "neighbour-unit": _spawn(
            python, "-c", sleeper, env={**base, "PATH": f"{neighbour}/hosts/h1/bin:{path}"}
        ),
        # An operator's shell that sourced DIR/env has the sandbox's STAGING_INVENTORY.
        "operator's shell": _spawn(
            "sleep", "60", env={**base, "STAGING_INVENTORY": str(directory / "inventory.toml")}
        ),
    }
    try:
        time.sleep(0.2)  # let each exec its command line and environment
        for name, process in {**ours, **not_ours}.items():
            assert sandbox_mod._alive(process.pid, box) is (name in ours), name
        box.pids = {name: process.pid for name, process in {**ours, **not_ours}.items()}
        box.save()
        assert sorted(sandbox_mod.down(directory)) == sorted(ours)
        for name, process in ours.items():
            expected = signal.SIGINT if name == "postgres" else signal.SIGTERM
            assert process.wait(timeout=5) == -expected, name
        assert all(_running(process) for process in not_ours.values())
    finally:
        for process in {**ours, **not_ours}.values():
            process.kill()
            process.wait()


# --- loopback only, and a fast PostgreSQL shutdown --------------------------------------------


def test_provisioned_nginx_listens_only_on_loopback(sandbox, provisioned):
    host = sandbox.hosts[0]
    master = sandbox.pids["h1:nginx"]
    nginx_pids = {master} | {
        int(stat.parent.name)
        for stat in Path("/proc").glob("[0-9]*/stat")
        if _parent_pid(stat) == master
    }
    sockets = [
        line.split()
        for line in subprocess.run(
            ["ss", "-Hltnp"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        if any(f"pid={pid}," in line for pid in nginx_pids)
    ]
    assert {int(s[3].rpartition(":")[2]) for s in sockets} == {host.http_port, host.https_port}
    assert {s[3].rpartition(":")[0] for s in sockets} == {"127.0.0.1"}, sockets
    assert 'listen_address = "127.0.0.1"' in sandbox.inventory_path.read_text()


def _parent_pid(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_down_stops_postgres_fast_with_a_client_connected():
    """SIGTERM is PostgreSQL's smart shutdown (it waits for clients); `down` asks for a fast
    one, so an open connection neither delays it nor ends in SIGKILL."""
    directory = Path(tempfile.mkdtemp(prefix="staging-ops-sbx5-"))
    directory.chmod(0o755)
    try:
        box = sandbox_mod.up(directory, hosts=1, slots=1, ports=sandbox_ports(500))
        postmaster = box.pids["postgres"]
        conn = psycopg2.connect(box.admin_dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            start = time.monotonic()
            stopped = sandbox_mod.down(directory)
            elapsed = time.monotonic() - start
        finally:
            conn.close()
        assert "postgres" in stopped
        assert elapsed < 1.5, elapsed
        stat = Path(f"/proc/{postmaster}/stat")
        assert not stat.exists() or stat.read_text().split(") ")[1][0] == "Z"  # gone, or a zombie
        log = (directory / "pg" / "postgres.log").read_text()
        assert "received fast shutdown request" in log
        assert "database system is shut down" in log
    finally:
        sandbox_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)


def test_the_stand_ins_stop_finds_a_services_whole_process_tree():
    """What `systemctl stop` kills (KillMode=control-group): the main process, its children
    and theirs, read from /proc in one pass (devtools/sandbox/systemctl.py) — and nothing
    else."""
    from devtools.sandbox.systemctl import _descendants

    tree = subprocess.Popen(
        ["sh", "-c", "sleep 30 & sh -c 'sleep 30 & wait' & wait"], start_new_session=True
    )
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = _descendants(None, tree.pid)
            if len(found) == 4:  # sh, sleep, the inner sh, its sleep
                break
            time.sleep(0.02)
        assert found[0] == tree.pid and len(found) == 4, found
        for pid in found[1:]:
            assert Path(f"/proc/{pid}/stat").exists()
            assert os.getpgid(pid) == tree.pid  # all of the tree's own session: none foreign
        assert os.getpid() not in found and _descendants(None, None) == []
    finally:
        os.killpg(tree.pid, signal.SIGKILL)
        tree.wait()
