"""Sample app deployed into staging slots: a stand-in for the Campaign UI and Airflow.

Standard library only (Python 3.11). One entry point, four modes:

    python app.py ui                  HTTP on 127.0.0.1:$UI_PORT (/, /api/version, /health)
    python app.py airflow-webserver   HTTP on 127.0.0.1:$AIRFLOW_PORT (/airflow/, /airflow/health)
    python app.py airflow-scheduler   heartbeat loop, one line every 30 s
    python app.py migrate             apply SQL migrations to $DATABASE_URL with the psql client

Servers and the scheduler stop cleanly (exit 0) on SIGTERM or SIGINT. A missing or invalid
environment variable, or a failed migration, exits 1 with one clear line on stderr.
"""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

BIND_HOST = "127.0.0.1"
HEARTBEAT_SECONDS = 30.0
PSQL_TIMEOUT_SECONDS = 60
# How long a stopped server finishes the requests it is answering (systemd's TimeoutStopSec
# is 20 s).
STOP_GRACE_SECONDS = 3

# (name, SQL) in order. Each pending migration runs in one transaction together with the
# row that records it, so a failing migration leaves nothing behind.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_init",
        "CREATE TABLE IF NOT EXISTS app_migrations ("
        " id serial PRIMARY KEY, name text UNIQUE, applied_at timestamptz DEFAULT now());",
    ),
]

PAGE_TEMPLATE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Campaign UI (sample app)</title></head>
<body>
<main>
<h1>Campaign UI</h1>
<p>Sample app standing in for the real Campaign UI.</p>
</main>
<footer id="version">{branch} &middot; {short_commit} &middot; {slot}</footer>
</body>
</html>
"""

AIRFLOW_PAGE_TEMPLATE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Airflow (sample app)</title></head>
<body><h1>Airflow</h1><p>Sample Airflow webserver for {slot}.</p></body>
</html>
"""


class ConfigError(Exception):
    """A required environment variable is missing or invalid."""


@dataclass(frozen=True)
class UiConfig:
    """What the UI serves: its port and the deployed version."""

    port: int
    commit: str
    branch: str
    slot: str


@dataclass(frozen=True)
class AirflowConfig:
    """What the Airflow webserver stand-in serves."""

    port: int
    slot: str


def require_env(name: str) -> str:
    """Return the non-empty value of environment variable ``name`` or raise ConfigError."""
    value = os.environ.get(name, "")
    if not value:
        raise ConfigError(f"missing required environment variable {name}")
    return value


def require_port(name: str) -> int:
    """Return environment variable ``name`` as a TCP port (1..65535) or raise ConfigError."""
    raw = require_env(name)
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"environment variable {name}={port} is outside 1..65535")
    return port


def read_ui_config() -> UiConfig:
    """Read the UI's configuration from the environment."""
    return UiConfig(
        port=require_port("UI_PORT"),
        commit=require_env("DEPLOYED_COMMIT"),
        branch=require_env("DEPLOYED_BRANCH"),
        slot=require_env("SLOT_IDENTIFIER"),
    )


def read_airflow_config() -> AirflowConfig:
    """Read the Airflow webserver's configuration from the environment."""
    return AirflowConfig(port=require_port("AIRFLOW_PORT"), slot=require_env("SLOT_IDENTIFIER"))


def version_payload(config: UiConfig) -> dict[str, str]:
    """The body of GET /api/version."""
    return {
        "commit": config.commit,
        "branch": config.branch,
        "slot": config.slot,
    }


def render_page(config: UiConfig) -> str:
    """The HTML of GET /: a small page whose footer shows the deployed version."""
    return PAGE_TEMPLATE.format(
        branch=html.escape(config.branch),
        short_commit=html.escape(config.commit[:7]),
        slot=html.escape(config.slot),
    )


Route = Callable[[], tuple[int, str, bytes]]


def json_response(payload: dict[str, str]) -> tuple[int, str, bytes]:
    """A 200 JSON response."""
    return 200, "application/json", json.dumps(payload).encode()


def html_response(text: str) -> tuple[int, str, bytes]:
    """A 200 HTML response."""
    return 200, "text/html; charset=utf-8", text.encode()


def text_response(text: str) -> tuple[int, str, bytes]:
    """A 200 plain-text response."""
    return 200, "text/plain; charset=utf-8", text.encode()


def make_handler(name: str, routes: dict[str, Route]) -> type[BaseHTTPRequestHandler]:
    """A request handler class serving GET ``routes`` (exact paths) and 404 for the rest."""

    class Handler(BaseHTTPRequestHandler):
        server_version = f"sample-app-{name}"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            route = routes.get(path)
            if route is None:
                status, ctype, body = 404, "text/plain; charset=utf-8", b"not found\n"
            else:
                status, ctype, body = route()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(f"{name}: {self.address_string()} {format % args}\n")

    return Handler


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that reuses its address and, when stopped, finishes the requests
    it is answering (for up to STOP_GRACE_SECONDS) as gunicorn does on SIGTERM: a restart
    during a deploy's hand-over then cuts no answer in half, while the closed socket sends
    every new request to the candidate. A request that hangs never holds the exit longer."""

    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.answering = 0
        self.answered = threading.Condition()

    def process_request(self, request: object, client_address: object) -> None:
        # Counted before its thread starts, so a stop that comes meanwhile still waits for it.
        with self.answered:
            self.answering += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request: object, client_address: object) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.answered:
                self.answering -= 1
                self.answered.notify_all()

    def finish_answers(self, grace: float) -> None:
        with self.answered:
            self.answered.wait_for(lambda: self.answering == 0, timeout=grace)


def on_stop_signals(callback: Callable[[], None]) -> None:
    """Call ``callback`` (from the main thread) on SIGTERM or SIGINT."""

    def handle(signum: int, frame: FrameType | None) -> None:
        callback()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def serve(name: str, port: int, routes: dict[str, Route]) -> None:
    """Serve ``routes`` on BIND_HOST:``port`` until SIGTERM/SIGINT."""
    server = Server((BIND_HOST, port), make_handler(name, routes))
    # shutdown() waits for serve_forever() to return, so it must not run on the main thread.
    on_stop_signals(lambda: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"{name}: listening on http://{BIND_HOST}:{port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()
        server.finish_answers(STOP_GRACE_SECONDS)
    print(f"{name}: stopped", file=sys.stderr, flush=True)


def run_ui() -> None:
    """Serve the Campaign UI stand-in."""
    config = read_ui_config()
    serve(
        "ui",
        config.port,
        {
            "/": lambda: html_response(render_page(config)),
            "/api/version": lambda: json_response(version_payload(config)),
            "/health": lambda: text_response("ok"),
        },
    )


def run_airflow_webserver() -> None:
    """Serve the Airflow webserver stand-in."""
    config = read_airflow_config()
    health = {"status": "healthy", "slot": config.slot}
    page = AIRFLOW_PAGE_TEMPLATE.format(slot=html.escape(config.slot))
    serve(
        "airflow-webserver",
        config.port,
        {
            "/airflow/": lambda: html_response(page),
            "/airflow/health": lambda: json_response(health),
        },
    )


def run_airflow_scheduler() -> None:
    """Print a heartbeat line now and every HEARTBEAT_SECONDS until SIGTERM/SIGINT."""
    slot = os.environ.get("SLOT_IDENTIFIER", "unknown-slot")
    stop = threading.Event()
    on_stop_signals(stop.set)
    beats = 0
    while not stop.is_set():
        beats += 1
        print(f"airflow-scheduler: heartbeat {beats} ({slot})", flush=True)
        stop.wait(HEARTBEAT_SECONDS)
    print("airflow-scheduler: stopped", flush=True)


class MigrationError(Exception):
    """psql failed: could not connect, or a statement failed."""


def psql(database_url: str, sql: str, *, tuples_only: bool = False) -> str:
    """Run ``sql`` through the psql client in one transaction; return stdout."""
    command = ["psql", database_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-c", sql]
    if tuples_only:
        command[2:2] = ["-t", "-A"]
    env = {**os.environ, "PGCONNECT_TIMEOUT": os.environ.get("PGCONNECT_TIMEOUT", "10")}
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=env,
            timeout=PSQL_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise MigrationError("the psql client is not installed (not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise MigrationError(f"psql did not finish within {PSQL_TIMEOUT_SECONDS}s") from None
    if done.returncode != 0:
        detail = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise MigrationError(detail)
    return done.stdout


def sql_literal(text: str) -> str:
    """``text`` as a single-quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def applied_migrations(database_url: str) -> set[str]:
    """Names already recorded in app_migrations (the table is created first if absent)."""
    psql(database_url, MIGRATIONS[0][1])
    out = psql(database_url, "SELECT name FROM app_migrations;", tuples_only=True)
    return {line for line in out.splitlines() if line}


def run_migrate() -> None:
    """Apply the pending MIGRATIONS to $DATABASE_URL, each with its app_migrations row."""
    database_url = require_env("DATABASE_URL")
    done = applied_migrations(database_url)
    pending = [(name, sql) for name, sql in MIGRATIONS if name not in done]
    for name, sql in pending:
        record = (
            f"INSERT INTO app_migrations (name) VALUES ({sql_literal(name)}) "
            "ON CONFLICT (name) DO NOTHING;"
        )
        try:
            psql(database_url, f"{sql}\n{record}")
        except MigrationError as exc:
            raise MigrationError(f"{name}: {exc}") from None
        print(f"migrate: applied {name}", flush=True)
    print(f"migrate: up to date ({len(pending)} applied, {len(done)} already)", flush=True)


MODES: dict[str, Callable[[], None]] = {
    "ui": run_ui,
    "airflow-webserver": run_airflow_webserver,
    "airflow-scheduler": run_airflow_scheduler,
    "migrate": run_migrate,
}


def main(argv: list[str]) -> int:
    """Run the mode named by ``argv[0]``; return the process exit status."""
    if len(argv) != 1 or argv[0] not in MODES:
        print(f"usage: app.py {{{','.join(MODES)}}}", file=sys.stderr)
        return 2
    mode = argv[0]
    try:
        MODES[mode]()
    except ConfigError as exc:
        print(f"app.py {mode}: {exc}", file=sys.stderr)
        return 1
    except MigrationError as exc:
        print(f"app.py {mode}: migration failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"app.py {mode}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
