"""ssh_get, the request every deploy check makes through the SSH connection (a direct-tcpip
channel to the droplet's loopback): the whole answer arrives, however the server closes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from staging_ops import remote
from staging_ops.deploy.verify import ssh_get
from staging_ops.inventory import load_inventory

BODY = b'{"status": "healthy"}'


class SlowBody(BaseHTTPRequestHandler):
    """An HTTP/1.0 answer (the server closes after it) whose body comes 0.2 s after its
    headers, as a busy server's may: the headers already say the connection will close."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.flush()
        time.sleep(0.2)
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


class KeepAlive(SlowBody):
    """The same as HTTP/1.1 (the connection stays open after the answer)."""

    protocol_version = "HTTP/1.1"


@pytest.fixture(params=[SlowBody, KeepAlive], ids=["closes", "keep-alive"])
def server(request) -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), request.param)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_body_that_comes_after_the_headers_is_read_whole(sandbox, server):
    session = remote.connect(load_inventory(sandbox.inventory_path).hosts["h1"])
    deployer = SimpleNamespace(
        remote=session, slot=SimpleNamespace(subdomain="staging-1.justapply.net")
    )
    try:
        answers = [ssh_get(deployer, server, "/health") for _ in range(3)]
    finally:
        session.close()
    assert answers == [(200, BODY)] * 3
