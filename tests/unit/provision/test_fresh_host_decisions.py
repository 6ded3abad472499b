"""Pure decisions of provision-all for a fresh droplet, tested without a host: facts in,
changes (or commands) out, in the manner of pyinfra's operation tests."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from staging_ops import remote
from staging_ops.inventory import Host
from staging_ops.provision import databases
from staging_ops.provision import plan as provision
from staging_ops.remote.facts import HostFacts


def _host(**kwargs) -> Host:
    return Host(name="d1", address="10.0.0.2", **kwargs)


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        # A fresh droplet: the packages are not even installed yet.
        ({}, ["nginx", "postgresql"]),
        (
            {
                "nginx": {"enabled": "enabled", "active": "active"},
                "postgresql": {"enabled": "enabled", "active": "active"},
            },
            [],
        ),
        # Installed but disabled (would not come back after a reboot), or stopped.
        (
            {
                "nginx": {"enabled": "disabled", "active": "active"},
                "postgresql": {"enabled": "enabled", "active": "failed"},
            },
            ["nginx", "postgresql"],
        ),
        ({"nginx": {"enabled": "masked", "active": "inactive"}}, ["nginx", "postgresql"]),
    ],
)
def test_boot_services_are_enabled_and_started_only_when_needed(states, expected):
    facts = HostFacts.from_json({"services": states})
    changes = provision.boot_service_changes(facts, ("nginx", "postgresql"))
    assert [c.target for c in changes] == expected
    assert all(c.action == "enable --now" for c in changes)


def test_boot_services_default_to_what_the_packages_install():
    assert _host(packages=("nginx", "git", "postgresql")).services_at_boot == (
        "nginx",
        "postgresql",
    )
    assert _host(packages=("nginx", "git")).services_at_boot == ("nginx",)
    assert _host(packages=("nginx",), boot_services=()).services_at_boot == ()


@pytest.mark.parametrize(
    ("crt", "key", "needed"),
    [("missing", "missing", True), ("file", "missing", False), ("missing", "file", False)],
)
def test_placeholder_certificate_only_when_both_files_are_missing(crt, key, needed):
    host = _host()
    facts = {"stat": {host.tls_certificate: {"type": crt}, host.tls_certificate_key: {"type": key}}}
    assert provision.placeholder_needed(HostFacts.from_json(facts), host) is needed


def test_placeholder_certificate_action_makes_a_certificate_for_every_name(tmp_path: Path):
    host = _host(
        tls_certificate=str(tmp_path / "live dir/fullchain.pem"),
        tls_certificate_key=str(tmp_path / "keys/privkey.pem"),
    )
    names = ["staging-1.justapply.net", "staging-10.justapply.net"]
    # The prepare script's certificate action alone (no user, no directories).
    args = provision.certificate_args(host, names)
    command = remote.script_command(provision.PREPARE_SCRIPT, *args)
    subprocess.run(["sh", "-c", command], check=True)
    text = subprocess.run(
        ["openssl", "x509", "-in", host.tls_certificate, "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(f"DNS:{n}" in text for n in names)
    assert (tmp_path / "keys/privkey.pem").stat().st_mode & 0o077 == 0
    # The paths are arguments: a space in one stays inside its word.
    assert shlex.quote(host.tls_certificate) in command


def test_admin_password_prefers_the_operators_then_the_droplets(monkeypatch):
    monkeypatch.delenv(databases.ADMIN_PASSWORD_ENV, raising=False)
    assert databases.admin_password(None) is None
    assert databases.admin_password("  \n") is None
    assert databases.admin_password("kept-on-droplet\n") == "kept-on-droplet"
    monkeypatch.setenv(databases.ADMIN_PASSWORD_ENV, "operator's")
    assert databases.admin_password("kept-on-droplet\n") == "operator's"


def test_admin_secret_lives_under_the_base_dir():
    assert databases.admin_secret_path(_host(base_dir="/srv/staging")) == (
        "/srv/staging/.staging-ops/postgres-admin"
    )


def test_line_sink_hands_over_whole_lines_only():
    seen: list[str] = []
    sink = remote.connection._LineSink(seen.append)
    sink.write("Unpacking ngi")
    assert seen == []
    sink.write("nx (1.22)\r\nSetting up nginx\n\nFetch")
    assert seen == ["Unpacking nginx (1.22)", "Setting up nginx", ""]
