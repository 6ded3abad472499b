"""We talk only to our droplet: every connection checks the host key after the key exchange
and before authenticating. An impostor sshd on a host's address (another key) gets no user
name, no key, no command and no file: its own DEBUG log says so. An unknown key is refused
with its fingerprint and the command that trusts it; `invoke hosts.trust --yes` records it."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from staging_ops import remote
from staging_ops.inventory import load_inventory
from tests.conftest import free_port, inventory_variant, run_invoke
from tests.sandbox.sshd_helpers import config_like, daemon_sshd, fingerprint_of, new_host_key

# What an sshd logs once a client goes past the key exchange: the ssh-userauth service
# request (packet type 5), an authentication attempt, a channel (session, exec, sftp, or a
# forwarding). None of it may appear in an impostor's log.
PAST_KEX = (
    "receive packet: type 5",
    "userauth",
    "Accepted",
    "Failed publickey",
    "Failed password",
    "server_input_channel_open",
    "request exec",
    "subsystem request",
    "direct-tcpip",
)


def _sandbox_key(sandbox) -> Path:
    return sandbox.path / "keys" / "ssh_host_ed25519_key.pub"


def _known_hosts(path: Path, name: str, public_key: Path) -> Path:
    path.write_text(f"{name} {' '.join(public_key.read_text().split()[:2])}\n")
    return path


def _inventory(sandbox, tmp_path: Path, known_hosts: Path, port: int | None = None, pin=None):
    real_port = sandbox.hosts[0].ssh_port
    changes = [(f'known_hosts = "{sandbox.known_hosts_path}"', f'known_hosts = "{known_hosts}"')]
    if port is not None:
        changes.append((f"port = {real_port}\n", f"port = {port}\n"))
    if pin is not None:
        changes.append(("connect_timeout = 10\n", f'connect_timeout = 10\nhost_key = "{pin}"\n'))
    return inventory_variant(sandbox, tmp_path, *changes)


def _error_lines(result) -> list[str]:
    """The `error:` lines (provision-all prints its per host, under the host, on stdout)."""
    lines = (result.stdout + result.stderr).splitlines()
    return [line.strip() for line in lines if line.strip().startswith("error:")]


@pytest.fixture
def impostor(sandbox, tmp_path):
    """An sshd with the sandbox host's authorized keys and session settings, but a host key of
    its own, on a port of its own (the address the inventory will name)."""
    key = new_host_key(tmp_path, "impostor_host_key")
    port = free_port()
    config = config_like(sandbox, tmp_path, "impostor", port, key)
    with daemon_sshd(config, tmp_path / "impostor.log") as server:
        server.port, server.key = port, key
        yield server


def _assert_stopped_at_kex(server) -> None:
    """The impostor's log: the key exchange done, then the connection ended before anything
    else (waits a moment for sshd to finish writing about the connection)."""
    deadline = time.monotonic() + 5
    while not re.search(r"Connection (reset|closed) by .*\[preauth\]", server.log_text()):
        assert time.monotonic() < deadline, server.log_text()[-2000:]
        time.sleep(0.02)
    log = server.log_text()
    assert "KEX done" in log  # the key exchange did happen: the check is ours, after it
    assert "[preauth]" in log.split("KEX done", 1)[1]  # and the connection ended there
    shown = [marker for marker in PAST_KEX if marker in log]
    assert shown == [], f"the impostor saw {shown}:\n{log[-2000:]}"


def test_an_impostor_with_another_key_gets_nothing(sandbox, provisioned, impostor, tmp_path):
    # known_hosts files the sandbox host's real key under the address the impostor answers on.
    known = _known_hosts(
        tmp_path / "known_hosts", f"[127.0.0.1]:{impostor.port}", _sandbox_key(sandbox)
    )
    inventory = _inventory(sandbox, tmp_path, known, port=impostor.port)
    env = {**sandbox.env(), "STAGING_INVENTORY": str(inventory)}
    before = known.read_text()
    real, fake = (
        fingerprint_of(_sandbox_key(sandbox)),
        fingerprint_of(impostor.key.with_suffix(".pub")),
    )

    provision = run_invoke("provision-all", env=env)
    logs = run_invoke("logs", "--slot", "1", "-n", "5", env=env)

    for result in (provision, logs):
        assert result.returncode == 1, result.stdout + result.stderr
        (line,) = _error_lines(result)
        assert (
            f"h1 (127.0.0.1:{impostor.port}): host key CHANGED: it presents ssh-ed25519 {fake}"
            in line
        )
        assert f"knows ssh-ed25519 {real} for [127.0.0.1]:{impostor.port}" in line
        assert "refused before logging in" in line
    assert "uploads=0" in provision.stdout and "commands=0" in provision.stdout
    _assert_stopped_at_kex(impostor)
    assert known.read_text() == before  # never overwritten

    # hosts.trust refuses a changed key as well, and leaves the file alone.
    trust = run_invoke("hosts.trust", "--host", "h1", "--yes", env=env)
    assert trust.returncode == 1
    assert "host key CHANGED" in _error_lines(trust)[0]
    assert known.read_text() == before
    _assert_stopped_at_kex(impostor)


def test_a_pinned_fingerprint_refuses_the_impostor_too(sandbox, impostor, tmp_path):
    real = fingerprint_of(_sandbox_key(sandbox))
    inventory = _inventory(sandbox, tmp_path, tmp_path / "none", port=impostor.port, pin=real)
    host = load_inventory(inventory).hosts["h1"]
    with pytest.raises(remote.HostKeyChanged) as refused:
        remote.connect(host)
    assert f"the inventory's host_key is {real}" in str(refused.value)
    assert refused.value.exit_code == 1
    _assert_stopped_at_kex(impostor)
    # The same pin on the real host's port: in.
    session = remote.connect(
        load_inventory(_inventory(sandbox, tmp_path, tmp_path / "none", pin=real)).hosts["h1"]
    )
    try:
        assert session.run("echo in")[1] == "in\n"
    finally:
        session.close()


def test_an_unknown_key_is_refused_with_its_fingerprint_until_trusted(
    sandbox, provisioned, impostor, tmp_path
):
    known = tmp_path / "ssh" / "known_hosts"  # not there yet: hosts.trust creates it
    inventory = _inventory(sandbox, tmp_path, known, port=impostor.port)
    env = {**sandbox.env(), "STAGING_INVENTORY": str(inventory)}
    fake = fingerprint_of(impostor.key.with_suffix(".pub"))

    refused = run_invoke("provision-all", env=env)
    assert refused.returncode == 1
    (line,) = _error_lines(refused)
    assert line == (
        f"error: h1 (127.0.0.1:{impostor.port}): unknown host key ssh-ed25519 {fake} (not in "
        f"{known}); refused before logging in; if it is the droplet's key, trust it: "
        "invoke hosts.trust --host h1"
    )
    _assert_stopped_at_kex(impostor)

    # Without a terminal and without --yes: shown, not recorded.
    asked = run_invoke("hosts.trust", "--host", "h1", env=env)
    assert asked.returncode == 1
    assert f"h1 (127.0.0.1:{impostor.port}) presents ssh-ed25519 {fake}" in asked.stdout
    assert not known.exists()
    _assert_stopped_at_kex(impostor)

    trusted = run_invoke("hosts.trust", "--host", "h1", "--yes", env=env)
    assert trusted.returncode == 0, trusted.stderr
    key_type, key_text = impostor.key.with_suffix(".pub").read_text().split()[:2]
    assert known.read_text() == f"[127.0.0.1]:{impostor.port} {key_type} {key_text}\n"
    assert oct(known.stat().st_mode & 0o777) == "0o600"
    # Now that its key is trusted (the operator said so), this sshd is talked to: the log
    # markers the assertions above look for do appear, so their absence meant something.
    again = run_invoke("provision-all", "--check", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    log = impostor.log_text()
    assert "userauth-request for user root" in log and "ctype session" in log

    # A second trust changes nothing.
    same = run_invoke("hosts.trust", "--host", "h1", "--yes", env=env)
    assert same.returncode == 0
    assert "is trusted" in same.stdout and "0 key(s) recorded" in same.stdout
    assert len(known.read_text().splitlines()) == 1


def test_the_sandbox_records_its_keys_so_checking_is_on(sandbox, provisioned):
    inventory = load_inventory(sandbox.inventory_path)
    host = inventory.hosts["h1"]
    assert host.known_hosts == str(sandbox.known_hosts_path)
    name = f"[127.0.0.1]:{sandbox.hosts[0].ssh_port}"
    assert sandbox.known_hosts_path.read_text().startswith(f"{name} ssh-ed25519 ")
    trust = run_invoke("hosts.trust", "--host", "h1", env=sandbox.env())
    assert trust.returncode == 0
    assert f"{fingerprint_of(_sandbox_key(sandbox))} is trusted" in trust.stdout


def test_a_protected_or_unknown_host_is_refused_before_connecting(sandbox):
    production = run_invoke("hosts.trust", "--host", "production", "--yes", env=sandbox.env())
    assert production.returncode == 2
    assert _error_lines(production) == [
        "error: host production (167.99.0.168) is protected: never connected to"
    ]
    missing = run_invoke("hosts.trust", "--host", "nope", "--yes", env=sandbox.env())
    assert missing.returncode == 2
    assert "no such host" in _error_lines(missing)[0]


def test_two_known_keys_of_one_type_either_is_accepted(sandbox, tmp_path):
    """A key being rotated: the droplet's real key and a newer one both filed under its name
    (paramiko alone would keep only the last of a type and refuse the real one)."""
    newer = new_host_key(tmp_path, "newer_host_key").with_suffix(".pub")
    name = f"[127.0.0.1]:{sandbox.hosts[0].ssh_port}"
    known = tmp_path / "known_hosts"
    lines = [
        _known_hosts(tmp_path / x, name, k).read_text()
        for x, k in (
            ("a", _sandbox_key(sandbox)),
            ("b", newer),
        )
    ]
    known.write_text("".join(lines))
    session = remote.connect(load_inventory(_inventory(sandbox, tmp_path, known)).hosts["h1"])
    try:
        assert session.run("echo in")[1] == "in\n"
    finally:
        session.close()
