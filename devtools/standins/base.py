"""A threaded HTTP server on 127.0.0.1 that records each request, can be stopped and started
again on the same port (a service that goes away and comes back), and keeps the requests it
refused: a test asserts there were none (`assert_valid`)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1 << 20


@dataclass
class Recorded:
    """One request and the answer it got; `problem` says why it was refused as invalid."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    answer: Any = None
    problem: str | None = None


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class StandIn:
    """Subclasses implement `handle(method, path, headers, raw) -> (Answer, problem)`."""

    name = "stand-in"

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> str:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stand_in._serve(self)

            do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests read

    def invalid(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.problem]

    def assert_valid(self) -> None:
        bad = self.invalid()
        assert not bad, f"{self.name} refused {len(bad)} request(s): " + "; ".join(
            f"{r.method} {r.path}: {r.problem}" for r in bad
        )

    # -- serving

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(min(length, MAX_BODY)) if length else b""
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self.lock:
            answer, problem = self.handle(request.command, request.path, headers, raw)
            self.requests.append(
                Recorded(
                    request.command,
                    request.path,
                    headers,
                    body,
                    answer.status,
                    answer.body,
                    problem,
                )
            )
        data = json.dumps(answer.body).encode()
        request.send_response(answer.status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for key, value in answer.headers.items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(data)

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[Answer, str | None]:
        raise NotImplementedError
