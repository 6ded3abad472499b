"""Slot health checks (health.py) against the sandbox's real nginx."""

from __future__ import annotations

import socket
import threading

import pytest

from staging_ops.health import slot_get
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
    assert check["problem"] is None and check["expires"]
    # A name nginx refuses (no such slot): no certificate at all, said in one line.
    other = type(slot)(**{**slot.__dict__, "subdomain": "nobody.justapply.net"})
    assert certificate_check(host, other)["problem"].startswith("no TLS answer")
