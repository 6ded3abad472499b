"""Serving the web app.

- `serve_staging`: the standalone Staging API and Dashboard (`invoke api.serve`, `python -m
  staging_ops.web`) under granian, one worker process per core, each running the app on a
  single Python thread. Python runs one thread at a time per process, so several threads in
  one process queue behind each other for the interpreter (and the tail latency shows it);
  processes use every core. granian's HTTP handling is native code, which leaves the cores to
  the app. Each worker builds its own app after the fork: its own connection pool and change
  listener (a forked PostgreSQL connection must not be shared).
- `BackgroundServer`: any WSGI app under waitress on a thread of the calling process, for
  tests and anything else that needs a real HTTP server on loopback for a while around an app
  object it built itself (granian loads its app by import path, in other processes).
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from typing import Any

from waitress.server import create_server

from staging_ops.errors import BadInput, StagingError
from staging_ops.registry.changes import SHARED_STAMP_ENV, SharedStamp

DEFAULT_THREADS = 4
STAGING_APP = "staging_ops.web:create_app"  # a factory: each worker calls it once


def default_workers() -> int:
    return max(2, os.cpu_count() or 1)


MAX_WORKERS = 64
WORKERS_KILL_TIMEOUT = 5  # seconds a stopped worker gets to finish its requests
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8700
    workers: int = 0  # 0: one per core, at least 2

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise BadInput(f"port must be between 1 and 65535 (got {self.port})")
        if not 0 <= self.workers <= MAX_WORKERS:
            raise BadInput(f"workers must be between 1 and {MAX_WORKERS} (got {self.workers})")

    @property
    def worker_count(self) -> int:
        return self.workers or default_workers()


def serve(target: str, options: ServeOptions, *, factory: bool = False) -> None:
    """Serve the WSGI app at import path `target` (or the app it returns, with `factory`)
    until SIGINT/SIGTERM."""
    from granian.constants import Interfaces
    from granian.log import LogLevels
    from granian.server import Server

    server = Server(
        target,
        address=options.host,
        port=options.port,
        interface=Interfaces.WSGI,
        workers=options.worker_count,
        blocking_threads=1,  # the app's one Python thread per worker
        runtime_threads=1,  # granian's own I/O thread per worker
        factory=factory,
        log_level=LogLevels.warning,
        log_access=False,
        workers_kill_timeout=WORKERS_KILL_TIMEOUT,
        respawn_failed_workers=True,  # a worker that dies is replaced, not the server ended
    )
    global _workers_parent
    _watch_worker_forks()
    _workers_parent = os.getpid()
    try:
        server.serve()
    finally:
        _workers_parent = None


# The PID of the process running `serve`, while it does: its forks are granian's workers.
_workers_parent: int | None = None


# Looked up before any fork, not in the child: the dynamic loader's lock may be held by
# another thread of the parent at the fork.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


@functools.cache
def _watch_worker_forks() -> None:
    os.register_at_fork(after_in_child=_worker_forked)


def _worker_forked() -> None:
    """First thing in a worker, in the child at the fork (granian forks its workers where
    fork is multiprocessing's start method, as on Linux before Python 3.14).

    Until granian installs the worker's own signal handlers, which it does only after the
    app is built, the worker runs the handlers it inherited from the main process; those just
    set flags on the main process's server object, copied and unread here. A SIGTERM in that
    window (a server stopped as it starts) was lost: the worker then served on, and the main
    process waited its kill timeout for it. With the default action restored, it ends at once;
    it serves nothing yet. And a worker must not outlive the main process (SIGKILLed, it
    reaps nobody): the kernel kills it when its parent dies.
    """
    global _workers_parent
    parent, _workers_parent = _workers_parent, None  # a worker's own forks are no workers
    if parent is None:
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if _PRCTL is not None:
        # Tied to the forking thread, not the process: granian forks from its main thread.
        _PRCTL(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), *[ctypes.c_ulong(0)] * 3)
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os._exit(1)


def serve_staging(options: ServeOptions) -> None:
    """The Staging API and Dashboard (`create_app()` from the environment) under granian.

    The app is built once here first, so a missing secret or DSN, or an unreachable registry,
    ends the command with one clear error before any worker starts; that probe's connections
    are closed again before the workers fork. A bad inventory (an unknown key, say) ends it
    first, with exit 2 (app_inventory.check_inventory).
    """
    from staging_ops.web import close_app, create_app
    from staging_ops.web.app_inventory import check_inventory

    check_inventory()
    probe = create_app(pool_size=1)
    close_app(probe)
    ensure_port_free(options.host, options.port)
    # The workers share one stamp, so a write through one is seen at once through the others.
    stamp = SharedStamp.create()
    os.environ[SHARED_STAMP_ENV] = str(stamp)
    # One scheduled reaper per server, a child process of this one (claims/scheduled_reap.py).
    from staging_ops.claims.scheduled_reap import ReaperSupervisor, interval_from_env

    # A bad STAGING_REAP_INTERVAL fails here, before any worker starts; `off`: no reaper.
    reaper = ReaperSupervisor().start() if interval_from_env() is not None else None
    try:
        serve(STAGING_APP, options, factory=True)
    finally:
        if reaper is not None:
            reaper.stop()
        os.environ.pop(SHARED_STAMP_ENV, None)
        stamp.unlink(missing_ok=True)


def ensure_port_free(host: str, port: int) -> None:
    """StagingError if something listens on host:port already. granian's workers bind with
    SO_REUSEPORT, which would silently share the port with an older server still running
    there (each answering some of the requests); a plain bind refuses instead."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StagingError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


class BackgroundServer:
    """waitress on a thread. `port=0` picks a free port; `url` says which one it got."""

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, threads: int = DEFAULT_THREADS
    ) -> None:
        self._server = create_server(
            app, host=host, port=port, threads=threads, ident="staging-ops"
        )
        self.url = f"http://{host}:{self._server.effective_port}"
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="staging-api", daemon=True)

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        # waitress's own run() loops until its socket map is empty, which another thread
        # cannot arrange safely; polling in short rounds lets stop() end the loop cleanly.
        server = self._server
        while not self._stopping.is_set():
            server.asyncore.loop(
                timeout=0.2, map=server._map, count=1, use_poll=server.adj.asyncore_use_poll
            )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection, and end the worker threads."""
        self._stopping.set()
        self._thread.join(timeout)
        for channel in list(self._server._map.values()):
            channel.close()  # the listening socket, the trigger and any open connections
        self._server.task_dispatcher.shutdown()
