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
