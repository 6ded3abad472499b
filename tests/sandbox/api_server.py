"""`invoke api.serve` run for a test: the Staging API server (granian, several worker
processes) on a free loopback port, and what tests ask of it (its sockets, its workers)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from staging_ops.web.auth import mint_token
from tests.conftest import INVOKE, ROOT, free_port

SECRET = "test-secret-for-the-staging-api-server-0123"
BASE = "/api/staging"


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def listening_sockets(port: int) -> int:
    """How many sockets listen on 127.0.0.1:`port` (granian gives each worker its own)."""
    local = f"0100007F:{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1] == local and row.split()[3] == "0A")


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str, **kwargs: object) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.request(
            method, self.url + BASE + path, headers=headers, timeout=10, **kwargs
        )


def wait_listening(process: subprocess.Popen[str], port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"api.serve did not listen on {port}")


@contextlib.contextmanager
def serving(env: dict[str, str], workers: int = 2) -> Iterator[Server]:
    """`invoke api.serve` with `env` added to ours, until SIGTERM at the end of the block."""
    port = free_port()
    process = subprocess.Popen(
        [INVOKE, "api.serve", "--port", str(port), "--workers", str(workers)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_listening(process, port)
        wait_for(lambda: listening_sockets(port) == workers)  # every worker, not the first
        yield Server(process, port, mint_token(SECRET, "qa@example.com"))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)


def wait_for(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(min(0.05, timeout / 10))
