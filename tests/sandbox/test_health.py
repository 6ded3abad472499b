"""Slot health checks (health.py) against the sandbox's real nginx."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from staging_ops.health import _probe_ui, public_version, slot_get
from staging_ops.inventory import load_inventory


def test_health_checks_go_to_the_host_even_with_a_proxy_in_the_environment(
    sandbox, provisioned, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy from the environment would get the request instead of the droplet (and the
    pinned TLS name would not reach nginx). The "proxy" here is a loopback listener that
    notes whether anyone connected."""
    connected = threading.Event()
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()
        proxy.settimeout(5)
        url = f"http://127.0.0.1:{proxy.getsockname()[1]}"
        for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)

        def watch() -> None:
            try:
                proxy.accept()[0].close()
                connected.set()
            except OSError:
                pass

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        inventory = load_inventory(sandbox.inventory_path)
        response = slot_get(inventory.hosts["h1"], inventory.slots[9], "/")
        assert response.status_code in (200, 502)  # nginx answered, deployed or not
    watcher.join(6)
    assert not connected.is_set(), "the health check went through the proxy"


def test_the_served_certificate_is_read_with_the_slots_name(sandbox, provisioned) -> None:
    """status/verify read the certificate nginx serves for each slot (SNI), not a file."""
    from staging_ops.health import certificate_check, served_certificate

    inventory = load_inventory(sandbox.inventory_path)
    slot = inventory.slots[4]
    host = inventory.host_of(slot)
    served = served_certificate(host, slot)
    assert served.exists and "*.justapply.net" in served.names
    check = certificate_check(host, slot)
    # The sandbox's own certificate is valid for 30 days: more than the 14-day warning.
    assert check.problem is None and check.expires
    # A name nginx refuses (no such slot): no certificate at all, said in one line.
    other = type(slot)(**{**slot.__dict__, "subdomain": "nobody.justapply.net"})
    assert (certificate_check(host, other).problem or "").startswith("no TLS answer")


class _Answer(BaseHTTPRequestHandler):
    """Answers every GET with the server's `answer` (status, content type, body)."""

    def do_GET(self) -> None:
        status, kind, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def version_server(sandbox) -> Iterator[ThreadingHTTPServer]:
    """An HTTPS server with the sandbox's certificate for the slots' names, standing in for a
    slot's nginx: its `answer` is what /api/version says."""
    inventory = load_inventory(sandbox.inventory_path)
    host = inventory.hosts["h1"]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(host.tls_certificate, host.tls_certificate_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join()
    server.server_close()


COMMIT = "c" * 40
JSON = "application/json"
# (what /api/version answers) -> (public_version's answer, status's UI check)
VERSION_ANSWERS = [
    (
        "the version JSON",
        (200, JSON, b'{"commit": "%s"}' % COMMIT.encode()),
        {"commit": COMMIT},
        ("up", COMMIT),
    ),
    ("JSON without a commit", (200, JSON, b'{"branch": "main"}'), {"branch": "main"}, ("up", None)),
    ("a commit that is no string", (200, JSON, b'{"commit": 7}'), {"commit": 7}, ("up", None)),
    ("JSON that is no object", (200, JSON, b"[1, 2]"), [1, 2], ("up", None)),
    ("a 200 that is not JSON", (200, "text/html", b"<html>"), None, ("up", None)),
    ("an error page", (502, "text/html", b"Bad Gateway"), None, ("down", None)),
    ("the version JSON with a 500", (500, JSON, b'{"commit": "x"}'), None, ("down", None)),
]


@pytest.mark.parametrize(
    ("answer", "version", "probe"),
    [case[1:] for case in VERSION_ANSWERS],
    ids=[case[0] for case in VERSION_ANSWERS],
)
def test_public_version_and_the_ui_check_read_one_answer_alike(
    sandbox, version_server, answer, version, probe
) -> None:
    inventory = load_inventory(sandbox.inventory_path)
    host = replace(inventory.hosts["h1"], public_port=version_server.server_address[1])
    slot = inventory.slots[4]
    version_server.answer = answer  # type: ignore[attr-defined]
    assert public_version(host, slot) == version
    assert _probe_ui(host, slot, 3.0) == probe


def test_no_answer_is_none_and_down(sandbox) -> None:
    inventory = load_inventory(sandbox.inventory_path)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        host = replace(inventory.hosts["h1"], public_port=closed.getsockname()[1])
    slot = inventory.slots[4]
    assert public_version(host, slot, 2.0) is None
    assert _probe_ui(host, slot, 2.0) == ("down", None)
