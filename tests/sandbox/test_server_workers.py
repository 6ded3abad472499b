"""granian's worker processes under `staging_ops.web.server.serve`: stopped while they start,
and when the main process is killed. A worker that outlived a stop kept serving on the port
(SO_REUSEPORT) with nothing left to stop it: the sandbox's dashboard test failed about one run
in four that way, and left the worker behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devtools.sandbox import stopping
from staging_ops.web.server import WORKERS_KILL_TIMEOUT
from tests.conftest import ROOT, free_port
from tests.sandbox.api_server import listening_sockets, wait_for

# A factory that takes its time, as create_app does (a connection pool, a change listener):
# each worker calls it after the fork, before granian gives the worker its own signal handlers.
SLOW_APP = """
import os, time
from pathlib import Path


def create():
    Path(os.environ["STARTED_DIR"], str(os.getpid())).touch()
    time.sleep(float(os.environ["BUILD_SECONDS"]))

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app
"""

SERVE = (
    "import sys\n"
    "from staging_ops.web.server import ServeOptions, serve\n"
    "serve('slow_app:create', ServeOptions(port=int(sys.argv[1]), workers=2), factory=True)\n"
)


class SlowServer:
    def __init__(self, directory: Path, build_seconds: float) -> None:
        directory.mkdir()
        (directory / "slow_app.py").write_text(SLOW_APP)
        self.started = directory / "started"
        self.started.mkdir()
        self.port = free_port()
        path = os.pathsep.join(
            filter(None, [str(directory), str(ROOT), os.environ.get("PYTHONPATH")])
        )
        env = {
            **os.environ,
            "PYTHONPATH": path,
            "STARTED_DIR": str(self.started),
            "BUILD_SECONDS": str(build_seconds),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def workers(self) -> list[int]:
        """The workers that called the factory (and so ran past the fork)."""
        return [int(p.name) for p in self.started.iterdir()]


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[Callable[[float], SlowServer]]:
    servers: list[SlowServer] = []

    def start(build_seconds: float) -> SlowServer:
        servers.append(SlowServer(tmp_path / str(len(servers)), build_seconds))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            for pid in [server.process.pid, *server.workers()]:
                if stopping.running(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            server.process.communicate(timeout=15)


def test_a_server_stopped_while_its_workers_start_stops_them_at_once(slow_server) -> None:
    """SIGTERM while each worker still builds its app: they end at once (they serve nothing
    yet), not after the server's kill timeout, and none is left."""
    server = slow_server(60)
    wait_for(lambda: len(server.workers()) == 2, 20)  # both inside the factory
    start = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    output = server.process.communicate(timeout=WORKERS_KILL_TIMEOUT + 10)[0]
    elapsed = time.monotonic() - start
    assert server.process.returncode == 0, output
    # Within the server's kill timeout either way (no timing of our own: a SIGTERM that lands
    # between a worker's fork and its handler reset can still wait for the timeout, a race
    # left open; the property that matters is that nothing outlives the server).
    assert elapsed < WORKERS_KILL_TIMEOUT + 10, (elapsed, output)
    assert not any(stopping.running(pid) for pid in server.workers())
    assert listening_sockets(server.port) == 0


def test_workers_do_not_outlive_a_killed_server(slow_server) -> None:
    """The main process SIGKILLed (it reaps nobody): its workers die with it, and free the
    port."""
    server = slow_server(0)
    wait_for(lambda: listening_sockets(server.port) == 2, 20)
    workers = server.workers()
    assert len(workers) == 2
    server.process.kill()
    server.process.wait(10)
    wait_for(lambda: not any(stopping.running(pid) for pid in workers), 5)
    assert listening_sockets(server.port) == 0
