"""The host key a hop must present (remote/known_hosts.py): which known_hosts lines name a
host (plain, hashed as ssh's HashKnownHosts writes them, patterns), what is refused and in
which words, and that recording only ever appends."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from paramiko.hostkeys import HostKeyEntry

from staging_ops.remote.known_hosts import (
    Expectation,
    HostKeyChanged,
    UnknownHostKey,
    fingerprint,
    known_keys,
    known_name,
    record,
)


def keygen(tmp_path: Path, name: str):
    """A fresh ed25519 key: (its public line, its paramiko key, ssh-keygen's fingerprint)."""
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    line = " ".join(path.with_suffix(".pub").read_text().split()[:2])
    listed = subprocess.run(
        ["ssh-keygen", "-lf", str(path.with_suffix(".pub"))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return line, HostKeyEntry.from_line(f"x {line}").key, listed.split()[1]


@pytest.fixture
def keys(tmp_path):
    return keygen(tmp_path, "a"), keygen(tmp_path, "b")


def test_fingerprint_is_ssh_keygens(keys):
    (_, key, listed), _ = keys
    assert fingerprint(key) == listed


def test_names_are_filed_as_ssh_files_them():
    assert known_name("203.0.113.7", 22) == "203.0.113.7"
    assert known_name("203.0.113.7", 2222) == "[203.0.113.7]:2222"
    assert known_name("203.0.113.7", 2222, "droplet-alias") == "droplet-alias"


def test_plain_hashed_and_pattern_lines_name_the_host(tmp_path, keys):
    (a_line, a, _), (b_line, b, _) = keys
    file = tmp_path / "known_hosts"
    # ssh-keygen -H hashes a line as HashKnownHosts does.
    file.write_text(f"[10.0.0.9]:2222 {b_line}\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(file)], check=True, capture_output=True)
    hashed = file.read_text()
    assert hashed.startswith("|1|")
    file.write_text(
        "# comment\n\n"
        f"other.example,203.0.113.7 {a_line}\n"
        f"{hashed}"
        f"*.staging.example,!bad.staging.example {a_line}\n"
        f"@cert-authority 203.0.113.7 {b_line}\n"
        "203.0.113.7 ssh-ed25519 not-base64!\n"
    )
    assert [k.key for k in known_keys(file, "203.0.113.7")] == [a]
    assert [(k.key, k.line) for k in known_keys(file, "[10.0.0.9]:2222")] == [(b, 4)]
    assert [k.key for k in known_keys(file, "x.staging.example")] == [a]
    assert known_keys(file, "bad.staging.example") == []
    assert known_keys(file, "10.0.0.9") == []  # the port is part of the name
    assert known_keys(tmp_path / "absent", "203.0.113.7") == []


def test_verdicts(tmp_path, keys):
    (a_line, a, a_fp), (b_line, b, b_fp) = keys
    file = tmp_path / "known_hosts"
    expect = Expectation("h1 (203.0.113.7:22)", "h1", "203.0.113.7", file)
    unknown = expect.verdict(a)
    assert isinstance(unknown, UnknownHostKey) and unknown.key is a
    assert str(unknown) == (
        f"h1 (203.0.113.7:22): unknown host key ssh-ed25519 {a_fp} (not in {file}); refused "
        "before logging in; if it is the droplet's key, trust it: invoke hosts.trust --host h1"
    )
    file.write_text(f"203.0.113.7 {a_line}\n")
    assert expect.verdict(a) is None
    changed = expect.verdict(b)
    assert isinstance(changed, HostKeyChanged) and not isinstance(changed, UnknownHostKey)
    assert str(changed) == (
        f"h1 (203.0.113.7:22): host key CHANGED: it presents ssh-ed25519 {b_fp}, {file}:1 "
        f"knows ssh-ed25519 {a_fp} for 203.0.113.7; refused before logging in (a rebuilt "
        f"droplet? check, then `ssh-keygen -R '203.0.113.7' -f {file}` and invoke hosts.trust "
        "--host h1)"
    )
    file.write_text(f"203.0.113.7 {a_line}\n@revoked 203.0.113.7 {b_line}\n")
    assert "marked @revoked" in str(expect.verdict(b))
    assert expect.preferred_types() == ["ssh-ed25519"]
    pinned = Expectation("h1 (203.0.113.7:22)", "h1", "203.0.113.7", file, pin=b_fp)
    assert pinned.verdict(b) is None  # the pin wins over the file
    assert f"the inventory's host_key is {b_fp}" in str(pinned.verdict(a))


def test_record_appends_and_creates_a_private_file(tmp_path, keys):
    (a_line, a, _), (b_line, b, _) = keys
    file = tmp_path / "dir" / "known_hosts"
    record(file, "[127.0.0.1]:2201", a)
    assert file.read_text() == f"[127.0.0.1]:2201 {a_line}\n"
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    assert oct(file.parent.stat().st_mode & 0o777) == "0o700"
    file.write_text(file.read_text() + "# no newline at the end")
    record(file, "other", b)
    assert file.read_text().splitlines() == [
        f"[127.0.0.1]:2201 {a_line}",
        "# no newline at the end",
        f"other {b_line}",
    ]
    assert [k.key for k in known_keys(file, "other")] == [b]  # the cache saw the change
