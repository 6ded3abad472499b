"""The operator's ssh config (the file STAGING_SSH_CONFIG names): the inventory's address is
its Host alias, HostName/User/Port/IdentityFile fill what the inventory leaves out, and
ProxyJump goes through a bastion, whose key is checked as the droplet's is.

The slot host here is a copy of the sandbox host's sshd (same key, sessions, files) inside a
network namespace of its own: nothing outside can reach it. The bastion is an sshd started
per connection inside that namespace (inetd style) for clients of a loopback port: the only
way in, as on a droplet behind a bastion."""

from __future__ import annotations

import os
import socket
import statistics
import time
from pathlib import Path

import pytest

from staging_ops import remote
from staging_ops.inventory import load_inventory
from tests.conftest import free_port, inventory_variant, run_invoke
from tests.sandbox.sshd_helpers import (
    config_like,
    daemon_sshd,
    fingerprint_of,
    inetd_sshd,
    network_namespace,
    new_host_key,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def _key_line(public_key: Path) -> str:
    return " ".join(public_key.read_text().split()[:2])


class Behind:
    """The slot host behind its bastion, and the files that describe the route to it."""

    def __init__(self, sandbox, tmp_path: Path, namespace, target, bastion, target_port: int):
        self.sandbox, self.tmp, self.target, self.bastion = sandbox, tmp_path, target, bastion
        self.target_port = target_port
        self.bastion_key = tmp_path / "bastion_host_key.pub"
        self.host_key = sandbox.path / "keys" / "ssh_host_ed25519_key.pub"
        self.known_hosts = tmp_path / "known_hosts"
        self.ssh_config = tmp_path / "ssh_config"
        self.ssh_config.write_text(
            f"""# The operator's file: the bastion, and the slot host only through it.
Host bastion
    HostName 127.0.0.1
    Port {bastion.port}
    User root
    IdentityFile {sandbox.key_path}
    IdentitiesOnly yes

Host slot-h1
    HostName 127.0.0.1
    Port {target_port}
    User root
    IdentityFile {sandbox.key_path}
    IdentitiesOnly yes
    ProxyJump bastion
"""
        )
        # The inventory names the ssh config's alias and leaves port, user and key to it.
        real = sandbox.hosts[0].ssh_port
        self.inventory = inventory_variant(
            sandbox,
            tmp_path,
            ('\naddress = "127.0.0.1"', '\naddress = "slot-h1"'),
            (f"port = {real}\n", ""),
            ('user = "root"\n', ""),
            (f'key_file = "{sandbox.key_path}"\n', ""),
            (f'known_hosts = "{sandbox.known_hosts_path}"', f'known_hosts = "{self.known_hosts}"'),
        )

    def trust_both(self) -> None:
        self.known_hosts.write_text(
            f"[127.0.0.1]:{self.bastion.port} {_key_line(self.bastion_key)}\n"
            f"[127.0.0.1]:{self.target_port} {_key_line(self.host_key)}\n"
        )

    def env(self) -> dict[str, str]:
        return {
            **self.sandbox.env(),
            "STAGING_INVENTORY": str(self.inventory),
            "STAGING_SSH_CONFIG": str(self.ssh_config),
        }

    def host(self):
        return load_inventory(self.inventory).hosts["h1"]


@pytest.fixture
def behind(sandbox, tmp_path, monkeypatch):
    target_port, bastion_port = free_port(), free_port()
    bastion_key = new_host_key(tmp_path, "bastion_host_key")
    real_key = sandbox.path / "keys" / "ssh_host_ed25519_key"
    with network_namespace() as namespace:
        target_config = config_like(sandbox, tmp_path, "target", target_port, real_key)
        bastion_config = config_like(sandbox, tmp_path, "bastion", bastion_port, bastion_key)
        with (
            daemon_sshd(target_config, tmp_path / "target.log", namespace.enter) as target,
            inetd_sshd(
                bastion_config, tmp_path / "bastion.log", bastion_port, namespace.enter
            ) as bastion,
        ):
            route = Behind(sandbox, tmp_path, namespace, target, bastion, target_port)
            monkeypatch.setenv("STAGING_SSH_CONFIG", str(route.ssh_config))
            yield route


def _banner(port: int) -> bytes:
    """The first bytes served on 127.0.0.1:port (a tunnel's listener starts in Fabric's own
    thread: retried while it is not there yet, as admin_connect does)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as probe:
                return probe.recv(64)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_a_slot_host_behind_a_bastion_is_reached_through_it(behind, sandbox):
    behind.trust_both()
    session = remote.connect(behind.host())
    try:
        # Inside the namespace: only its loopback; the sandbox host's own session settings.
        _, links, _ = session.run("ip -o link show | cut -d: -f2")
        assert links.split() == ["lo"]
        assert session.run("echo $STAGING_SANDBOX_HOST")[1] == "h1\n"
        assert session.login == "root" and not session.sudo
        # Files over SFTP and a tunnel, both through the two hops.
        target = sandbox.hosts[0].root / "srv/staging/through-the-bastion.txt"
        remote.apply_files(session, [remote.Write(str(target), "via the bastion\n", 0o640)], [])
        assert target.read_text() == "via the bastion\n"
        assert oct(target.stat().st_mode & 0o777) == "0o640"
        with remote.tunnel(session, "127.0.0.1", behind.target_port) as local_port:
            assert _banner(local_port).startswith(b"SSH-2.0-OpenSSH")
        # Our TCP socket goes to the bastion only (the hops after it ride inside it): Nagle
        # is off on it, and it acknowledges at once (the bastion's answers come in small
        # writes under Nagle: bench/RESULTS.md has the per-command figures).
        (bastion,) = session.jumps
        sock = bastion.client.get_transport().sock
        assert sock.getpeername() == ("127.0.0.1", behind.bastion.port)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert sock.recv.__qualname__ == "_QuickAck.recv"
        times = []
        for _ in range(15):
            start = time.perf_counter()
            session.run("true")
            times.append(time.perf_counter() - start)
        # Without both, a command's round trip here takes 45-55 ms (delayed ACKs of 40 ms).
        assert statistics.median(times) < 0.040, times
    finally:
        session.close()
    log = behind.bastion.log_text()
    assert "direct-tcpip" in log
    assert f"target 127.0.0.1 port {behind.target_port}" in log


def test_the_cli_goes_through_the_bastion_once_both_keys_are_trusted(behind, sandbox, provisioned):
    journal = sandbox.hosts[0].root / "var/log/journal/job-search-ui@staging-1.service.log"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text("written on the slot host\n")
    env = behind.env()
    # Neither key known: the bastion is refused first (nothing reaches the slot host).
    refused = run_invoke("logs", "--slot", "1", "-n", "5", env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"error: jump host bastion (127.0.0.1:{behind.bastion.port}) for h1: unknown host key "
        f"ssh-ed25519 {fingerprint_of(behind.bastion_key)} (not in {behind.known_hosts}); "
        "refused before logging in; if it is the droplet's key, trust it: "
        "invoke hosts.trust --host h1"
    )
    assert "direct-tcpip" not in behind.bastion.log_text()
    assert "userauth-request" not in behind.bastion.log_text()

    trusted = run_invoke("hosts.trust", "--host", "h1", "--yes", env=env)
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.splitlines()[0] == (
        f"jump host bastion (127.0.0.1:{behind.bastion.port}) for h1 presents ssh-ed25519 "
        f"{fingerprint_of(behind.bastion_key)}"
    )
    assert f"h1 (127.0.0.1:{behind.target_port}) presents ssh-ed25519 " in trusted.stdout
    assert "2 key(s) recorded" in trusted.stdout
    assert len(behind.known_hosts.read_text().splitlines()) == 2

    logs = run_invoke("logs", "--slot", "1", "-n", "5", env=env)
    assert logs.returncode == 0, logs.stderr
    assert "written on the slot host" in logs.stdout
    assert f"target 127.0.0.1 port {behind.target_port}" in behind.bastion.log_text()


def test_without_the_jump_the_slot_host_cannot_be_reached(behind, tmp_path):
    behind.trust_both()
    direct = tmp_path / "direct_config"
    direct.write_text(behind.ssh_config.read_text().replace("    ProxyJump bastion\n", ""))
    os.environ["STAGING_SSH_CONFIG"] = str(direct)  # monkeypatch restores it
    with pytest.raises(remote.Unreachable) as raised:
        remote.connect(behind.host())
    assert str(raised.value) == (
        f"cannot reach h1 (127.0.0.1:{behind.target_port}): Connection refused"
    )


def test_a_changed_bastion_key_stops_the_route_at_the_bastion(behind):
    behind.known_hosts.write_text(
        f"[127.0.0.1]:{behind.bastion.port} {_key_line(behind.host_key)}\n"
        f"[127.0.0.1]:{behind.target_port} {_key_line(behind.host_key)}\n"
    )
    with pytest.raises(remote.HostKeyChanged) as raised:
        remote.connect(behind.host())
    assert str(raised.value).startswith(
        f"jump host bastion (127.0.0.1:{behind.bastion.port}) for h1: host key CHANGED"
    )
    time.sleep(0.2)
    assert "userauth-request" not in behind.bastion.log_text()
    assert "direct-tcpip" not in behind.bastion.log_text()
    # The slot host never heard from us.
    assert "Connection from" not in behind.target.log_text()
