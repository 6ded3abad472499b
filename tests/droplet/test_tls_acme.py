"""TLS over ACME on a real droplet: provision-all gets, expands and renews the host's
certificate from a local ACME server (Debian's pebble, in the droplet's network namespace,
validating HTTP-01 through our nginx on port 80), and status/verify report it.

The tests run in file order on one droplet and build on each other."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

import devtools.droplet as droplet_mod
from devtools.droplet import acme
from devtools.envfile import slot_block
from tests.conftest import run_invoke
from tests.droplet.conftest import droplet_dir, require_droplet_support

SLOW = 600


@pytest.fixture(scope="module")
def box() -> Iterator[droplet_mod.Droplet]:
    require_droplet_support()
    directory = droplet_dir("staging-ops-tls-")
    try:
        yield droplet_mod.up(directory, name="tls", acme="pebble")
    finally:
        droplet_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)


def invoke(box: droplet_mod.Droplet, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run_invoke(*args, env={**box.env(), **env}, timeout=SLOW)


def report(result: subprocess.CompletedProcess) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def served(box: droplet_mod.Droplet, name: str, within: float = 5.0) -> x509.Certificate:
    """The certificate nginx serves for `name`, verified against pebble's roots (and only
    them): the handshake fails unless pebble issued it for that name. `systemctl reload
    nginx` returns before nginx's new workers take over: a moment's grace."""
    context = ssl.create_default_context(cafile=str(acme.roots_path(box.path)))
    deadline = time.monotonic() + within
    while True:
        try:
            with (
                socket.create_connection((box.address, 443), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname=name) as tls,
            ):
                return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
        except ssl.SSLCertVerificationError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def names_of(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName))


def issued_count(box: droplet_mod.Droplet) -> int:
    return (acme.acme_dir(box.path) / "pebble.log").read_text().count("Issued certificate")


def with_extra_slot(box: droplet_mod.Droplet, tmp_path: Path, n: int, name: str) -> Path:
    text = box.inventory_path.read_text() + "\n" + slot_block(n, box.name, subdomain=name)
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def first(box) -> dict:
    return report(invoke(box, "provision-all", "--json"))


def test_a_fresh_droplet_gets_its_certificate_from_the_acme_server(box, first):
    (host,) = first["hosts"]
    acme_steps = [s for s in host["steps"] if s["step"] == "acme certificate"]
    assert acme_steps and acme_steps[0]["outcome"] == "changed", host["steps"]
    cert = served(box, "staging-4.justapply.net")
    assert "Pebble Intermediate CA" in cert.issuer.rfc4514_string()
    assert names_of(cert) == {f"staging-{n}.justapply.net" for n in range(1, 11)}
    # The private key and the ACME account never leave the droplet.
    assert "PRIVATE KEY" not in json.dumps(first)


def test_a_second_run_contacts_no_acme_server(box, first):
    before = issued_count(box)
    again = report(invoke(box, "provision-all", "--json"))
    (host,) = again["hosts"]
    assert (again["changed"], host["commands"], host["uploads"]) == (0, 1, 0), host["changes"]
    assert issued_count(box) == before


def test_status_and_verify_show_the_certificate(box, first):
    deployed = invoke(box, "deploy", "--slot", "4", "--branch", "main", "--task", "JA-4")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    verified = report(invoke(box, "verify", "--slot", "4", "--json"))
    assert verified["ok"] is True
    assert verified["certificate"]["problem"] is None and verified["certificate"]["expires"]
    rows = {r["slot"]: r for r in report(invoke(box, "status", "--json"))}
    assert rows[4]["certificate"]["problem"] is None


def test_check_names_what_would_be_requested_and_an_added_slot_is_expanded(box, first, tmp_path):
    inventory = with_extra_slot(box, tmp_path, 11, "staging-11.justapply.net")
    checked = report(
        invoke(box, "provision-all", "--check", "--json", STAGING_INVENTORY=str(inventory))
    )
    changes = [c for c in checked["hosts"][0]["changes"] if c["step"] == "acme certificate"]
    assert changes and "staging-11.justapply.net" in changes[0]["target"], checked
    before = issued_count(box)
    report(invoke(box, "provision-all", "--json", STAGING_INVENTORY=str(inventory)))
    assert issued_count(box) == before + 1
    assert "staging-11.justapply.net" in names_of(served(box, "staging-11.justapply.net"))
    again = report(invoke(box, "provision-all", "--json", STAGING_INVENTORY=str(inventory)))
    assert again["changed"] == 0


def test_a_certificate_close_to_expiry_is_renewed_without_a_failed_request(box, first, tmp_path):
    # Pebble issues a 20-day certificate (inside the 30-day renewal window) for a new name...
    _restart_pebble(box, validity=20 * 86400)
    short = with_extra_slot(box, tmp_path, 12, "staging-12.justapply.net")
    report(invoke(box, "provision-all", "--json", STAGING_INVENTORY=str(short)))
    near = served(box, "staging-12.justapply.net").not_valid_after_utc
    # ...and the next run renews it, with requests going through nginx all the while.
    _restart_pebble(box, validity=90 * 86400)
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    def probe() -> None:
        context = ssl.create_default_context(cafile=str(acme.roots_path(box.path)))
        while not stop.is_set():
            try:
                with (
                    socket.create_connection((box.address, 443), timeout=5) as raw,
                    context.wrap_socket(raw, server_hostname="staging-4.justapply.net") as tls,
                ):
                    tls.sendall(
                        b"GET /api/version HTTP/1.1\r\nHost: staging-4.justapply.net\r\n"
                        b"Connection: close\r\n\r\n"
                    )
                    head = tls.recv(64)
                if not head.startswith(b"HTTP/1.1 200"):
                    failures.append(head[:40].decode(errors="replace"))
                answered[0] += 1
            except OSError as exc:
                failures.append(type(exc).__name__)
            time.sleep(0.04)

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        renewed = report(invoke(box, "provision-all", "--json", STAGING_INVENTORY=str(short)))
    finally:
        time.sleep(0.5)
        stop.set()
        thread.join()
    assert renewed["changed"] >= 1
    assert served(box, "staging-12.justapply.net").not_valid_after_utc > near
    assert answered[0] > 10 and failures == []


def test_an_acme_server_that_is_down_fails_one_step_and_the_next_run_completes(box, first):
    # No certificate yet, as on a fresh droplet; the ACME server unreachable.
    droplet_mod.run(box, "certbot delete --non-interactive --cert-name justapply.net")
    acme.stop(box.path, box.pids)
    failed = invoke(box, "provision-all")
    assert failed.returncode == 1
    line = [x for x in failed.stdout.splitlines() if "error:" in x]
    assert line and "acme" in line[0] and acme.DIRECTORY_URL in line[0], failed.stdout
    # nginx still answers HTTP and the challenge path.
    token = droplet_mod.run(
        box,
        "mkdir -p /srv/staging/acme/.well-known/acme-challenge && "
        "echo ok > /srv/staging/acme/.well-known/acme-challenge/probe",
    )
    assert token.returncode == 0
    answer = subprocess.run(
        ["curl", "-s", "--noproxy", "*", "-H", "Host: staging-4.justapply.net",
         f"http://{box.address}/.well-known/acme-challenge/probe"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert answer.stdout.strip() == "ok"
    _restart_pebble(box)
    done = report(invoke(box, "provision-all", "--json"))
    assert not done["failed"]
    served(box, "staging-4.justapply.net")


def test_a_name_the_acme_server_refuses_fails_with_its_own_reason(box, first, tmp_path):
    refused = "staging-13.justapply.net"
    _restart_pebble(box, blocklist=(refused,))
    try:
        inventory = with_extra_slot(box, tmp_path, 13, refused)
        failed = invoke(box, "provision-all", STAGING_INVENTORY=str(inventory))
        assert failed.returncode == 1, failed.stdout + failed.stderr
        errors = [x for x in failed.stdout.splitlines() if "error:" in x]
        assert len(errors) == 1, failed.stdout
        # Pebble's own words, the name, and where it was asked; never a traceback.
        assert "forbidden by policy" in errors[0] and refused in errors[0], errors
        assert acme.DIRECTORY_URL in errors[0] and "Traceback" not in failed.stderr
        # The certificate nginx serves is still the last good one, for the other names.
        assert "staging-13.justapply.net" not in names_of(served(box, "staging-4.justapply.net"))
    finally:
        _restart_pebble(box)
    again = report(invoke(box, "provision-all", "--json"))
    assert not again["failed"]


def _restart_pebble(
    box: droplet_mod.Droplet, validity: int | None = None, blocklist: tuple[str, ...] = ()
) -> None:
    """A new pebble (a validity and a blocklist of its own): it remembers no account, so
    certbot's account for it goes too (a real ACME server keeps its accounts)."""
    acme.stop(box.path, box.pids)
    acme.prepare(box.path, box.layout.root, validity=validity or acme.DEFAULT_VALIDITY_SECONDS,
                 blocklist=blocklist)  # fmt: skip
    box.pids.update(acme.start(box.path, droplet_mod.machine.container_init(box.pids["launcher"])))
    box.save()
    droplet_mod.run(box, "rm -rf /etc/letsencrypt/accounts")
