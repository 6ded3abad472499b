"""Serving a WSGI app under waitress: in the foreground (`invoke api.serve`) or in a background
thread (tests, benches, anything that needs a real HTTP server on loopback for a while)."""

from __future__ import annotations

import threading
from typing import Any

from waitress import serve as waitress_serve
from waitress.server import create_server

DEFAULT_THREADS = 4


def serve(
    app: Any, host: str = "127.0.0.1", port: int = 8700, threads: int = DEFAULT_THREADS
) -> None:
    """Serve until interrupted."""
    waitress_serve(app, host=host, port=port, threads=threads, ident="staging-ops")


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
