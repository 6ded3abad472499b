"""Where a host's connection goes (remote/route.py): the inventory's settings against the
operator's ssh config, jump hosts, and what is refused before connecting. Pure: an ssh config
text and a Host in, hops out."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from staging_ops.errors import BadInput
from staging_ops.inventory import Host
from staging_ops.remote.route import SSH_CONFIG_ENV, load_ssh_config, route

CONFIG = """
Host droplet
    HostName 203.0.113.7
    User deploy
    Port 2222
    IdentityFile ~/.ssh/staging_key
    UserKnownHostsFile ~/.ssh/known_hosts_staging
    ConnectTimeout 7

Host behind
    HostName 10.0.0.5
    ProxyJump ops@bastion:2200,inner

Host bastion
    HostName 198.51.100.1
    User jumper
    IdentityFile /keys/bastion

Host inner
    HostName 10.0.0.1
    Port 2022
    HostKeyAlias inner-gateway
    IdentitiesOnly yes
    IdentityFile /keys/inner

Host command
    ProxyCommand nc %h %p

Host prod-alias
    HostName 167.99.0.168

Host *
    User fallback
"""


def hops_of(host: Host, text: str = CONFIG):
    return route(host, paramiko.SSHConfig.from_text(text), Path("/test/ssh_config"))


def test_the_ssh_config_fills_what_the_inventory_leaves_out():
    (hop,) = hops_of(Host("h1", "droplet")).hops
    assert (hop.hostname, hop.port, hop.user) == ("203.0.113.7", 2222, "deploy")
    assert hop.key_files == (str(Path("~/.ssh/staging_key").expanduser()),)
    assert not hop.only_key_files  # the agent and default keys too, as ssh does
    assert hop.expect.name == "[203.0.113.7]:2222"
    assert hop.expect.path == Path("~/.ssh/known_hosts_staging").expanduser()
    assert hop.expect.label == "h1 (203.0.113.7:2222)"
    assert hops_of(Host("h1", "droplet")).connect_timeout == 7.0


def test_explicit_inventory_values_win():
    given = frozenset({"user", "port", "key_file", "connect_timeout"})
    host = Host(
        "h1",
        "droplet",
        user="root",
        port=22,
        key_file="/inventory/key",
        connect_timeout=3.0,
        known_hosts="/inventory/known_hosts",
        set_in_inventory=given,
    )
    path = hops_of(host)
    (hop,) = path.hops
    # The address is still the alias looked up: HostName comes from the ssh config.
    assert (hop.hostname, hop.port, hop.user) == ("203.0.113.7", 22, "root")
    assert hop.key_files == ("/inventory/key",) and hop.only_key_files
    assert hop.expect.name == "203.0.113.7"  # port 22: no brackets
    assert hop.expect.path == Path("/inventory/known_hosts")
    assert path.connect_timeout == 3.0


def test_without_either_the_inventorys_defaults_hold():
    (hop,) = hops_of(Host("h1", "192.0.2.4"), "").hops
    assert (hop.hostname, hop.port, hop.user, hop.key_files) == ("192.0.2.4", 22, "root", ())
    assert hop.expect.path == Path("~/.ssh/known_hosts").expanduser()
    # A `Host *` User fills the user the inventory leaves out, as it does for ssh.
    assert hops_of(Host("h1", "192.0.2.4")).target.user == "fallback"


def test_proxyjump_hops_are_looked_up_too_in_order():
    path = hops_of(Host("h1", "behind", key_file="/k", set_in_inventory=frozenset({"key_file"})))
    first, second, target = path.hops
    assert (first.hostname, first.port, first.user) == ("198.51.100.1", 2200, "ops")
    assert first.key_files == ("/keys/bastion",) and not first.only_key_files
    assert first.expect.label == "jump host bastion (198.51.100.1:2200) for h1"
    assert (second.hostname, second.port, second.user) == ("10.0.0.1", 2022, "fallback")
    assert second.only_key_files and second.expect.name == "inner-gateway"
    assert (target.hostname, target.port, target.key_files) == ("10.0.0.5", 22, ("/k",))
    # A jump host's key is looked for in the host's known_hosts file; only the host is pinned.
    assert {h.expect.path for h in path.hops} == {target.expect.path}
    assert [h.expect.pin for h in path.hops] == [None, None, None]


def test_a_pin_applies_to_the_host_only():
    pin = "SHA256:" + "A" * 43
    path = hops_of(Host("h1", "behind", host_key=pin))
    assert [h.expect.pin for h in path.hops] == [None, None, pin]


@pytest.mark.parametrize(
    ("host", "text", "problem"),
    [
        (Host("h1", "command"), CONFIG, "ProxyCommand for 'command' is not supported"),
        (Host("h1", "prod-alias"), CONFIG, "h1 (167.99.0.168:22) is production's address"),
        (Host("h1", "x"), "Host x\n  ProxyJump 167.99.0.168\n", "jump host 167.99.0.168"),
        (Host("h1", "x"), "Host x\n  ProxyJump a b\n", "'a b' is not [user@]host[:port]"),
        (Host("h1", "x"), "Host x\n  Port ssh\n", "Port 'ssh' for 'x' is not a number"),
        (Host("h1", "x"), "Host x\n  Port 70000\n", "Port 70000 for 'x' is not a TCP port"),
        (Host("p", "x", protected=True), "", "host p (x) is protected: never connected to"),
    ],
)
def test_what_cannot_be_followed_is_refused_before_connecting(host, text, problem):
    with pytest.raises(BadInput) as refused:
        hops_of(host, text)
    assert problem in str(refused.value)
    assert "\n" not in str(refused.value)


def test_proxyjump_none_and_v6_jumps():
    assert len(hops_of(Host("h1", "x"), "Host x\n  ProxyJump none\n").hops) == 1
    jump, _ = hops_of(Host("h1", "x"), "Host x\n  ProxyJump ssh://u@[2001:db8::1]:2201\n").hops
    assert (jump.hostname, jump.port, jump.user) == ("2001:db8::1", 2201, "u")
    assert jump.expect.name == "[2001:db8::1]:2201"


def test_the_named_ssh_config_must_exist_the_default_need_not(monkeypatch, tmp_path):
    monkeypatch.setenv(SSH_CONFIG_ENV, str(tmp_path / "missing"))
    with pytest.raises(BadInput) as refused:
        load_ssh_config()
    assert str(refused.value) == f"{SSH_CONFIG_ENV}: {tmp_path / 'missing'}: no such file"
    monkeypatch.delenv(SSH_CONFIG_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    config, path = load_ssh_config()
    assert path == tmp_path / ".ssh" / "config" and config.get_hostnames() == set()
    named = tmp_path / "config"
    named.write_text("Host a\n  HostName 192.0.2.9\n")
    monkeypatch.setenv(SSH_CONFIG_ENV, str(named))
    assert load_ssh_config()[0].lookup("a")["hostname"] == "192.0.2.9"


def test_include_is_followed(monkeypatch, tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "staging").write_text("Host droplet\n  HostName 192.0.2.44\n")
    main = tmp_path / "config"
    main.write_text(f"Include {tmp_path}/conf.d/*\nHost other\n  User x\n")
    monkeypatch.setenv(SSH_CONFIG_ENV, str(main))
    config, _ = load_ssh_config()
    assert config.lookup("droplet")["hostname"] == "192.0.2.44"
    assert config.lookup("other")["user"] == "x"
