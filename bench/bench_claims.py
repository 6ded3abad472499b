"""Slot-claim speed: `invoke status` and `invoke claim` wall time (whole processes, median of 5)
and the Staging API's GET /api/staging/slots latency with 50 concurrent keep-alive clients on
loopback. Targets (issue 4): status <= 0.8 s, claim <= 0.5 s, API p99 <= 20 ms.

Needs a registry database it may write to (it migrates it and claims/releases `BENCH-n` tasks):
  STAGING_REGISTRY_DSN=postgresql://... python -m bench.bench_claims [--inventory PATH]

The API server runs as its own process (`invoke api.serve`). The 50 clients are closed-loop
(each sends its next request as soon as the previous answer arrives) and live in one asyncio
loop in this process, which costs far less CPU than 50 client threads would. For scale, the same
load is also run against a no-op WSGI app under waitress with the same thread count: the
ceiling of any waitress app on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bench.results import INVOKE, ROOT, timed, update_section
from staging_ops.inventory import inventory_path, load_inventory
from staging_ops.registry import PostgresRegistry, migrate
from staging_ops.web.auth import mint_token

RUNS = 5
WARMUP_PER_CLIENT = 5
SERVER_THREADS = 4
SLOTS_PATH = "/api/staging/slots"
NOOP_SERVER = """
import sys
from waitress import serve
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]
serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=int(sys.argv[2]), _quiet=True)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _client(port: int, request: bytes, count: int, latencies: list[float]) -> None:
    """One keep-alive connection sending `count` requests back to back, timing each."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for n in range(WARMUP_PER_CLIENT + count):
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            if status != b"200":
                raise SystemExit(f"GET answered {status.decode()}")
            if n >= WARMUP_PER_CLIENT:
                latencies.append(time.perf_counter() - began)
    finally:
        writer.close()


def load(
    port: int, path: str, headers: dict[str, str], clients: int, requests: int
) -> dict[str, float]:
    """Latency percentiles (ms) and throughput of `clients` closed-loop clients."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []

    async def run() -> None:
        await asyncio.gather(*(_client(port, request, requests, latencies) for _ in range(clients)))

    began = time.perf_counter()
    asyncio.run(run())
    elapsed = time.perf_counter() - began
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": latencies[-1] * 1000,
        "count": len(latencies),
        "rps": (len(latencies) + clients * WARMUP_PER_CLIENT) / elapsed,
    }


@contextmanager
def serving(args: Sequence[str], env: dict[str, str], port: int) -> Iterator[None]:
    """Run a server process until the block ends; wait until it listens on `port`."""
    # The server's log goes to a file: a pipe nobody reads would fill up and stall it.
    with tempfile.TemporaryFile(mode="w+") as log:
        server = subprocess.Popen(
            list(args), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_listening(server, log, port)
            yield
        finally:
            server.terminate()
            server.wait(10)


def _wait_listening(server: subprocess.Popen, log: IO[str], port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise SystemExit(f"server exited: {log.read()[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server did not listen on {port}")


def api_latency(
    env: dict[str, str], clients: int, requests: int, threads: int
) -> tuple[dict[str, float], dict[str, float]]:
    """(Staging API, no-op baseline) latency under the same load."""
    secret = secrets.token_hex(32)
    port = _free_port()
    api_env = {**os.environ, **env, "STAGING_API_JWT_SECRET": secret}
    serve = [INVOKE, "api.serve", "--port", str(port), "--threads", str(threads)]
    with serving(serve, api_env, port):
        token = mint_token(secret, "bench")
        api = load(port, SLOTS_PATH, {"Authorization": f"Bearer {token}"}, clients, requests)
    port = _free_port()
    noop = [sys.executable, "-c", NOOP_SERVER, str(port), str(threads)]
    with serving(noop, dict(os.environ), port):
        baseline = load(port, "/", {}, clients, requests)
    return api, baseline


def claim_times(env: dict[str, str], dsn: str) -> list[float]:
    """`invoke claim --slot auto` wall times; each claim is released again afterwards."""
    registry = PostgresRegistry(dsn)
    samples = []
    try:
        for n in range(RUNS):
            task = f"BENCH-{n + 1}"
            args = [INVOKE, "claim", "--slot", "auto", "--task", task, "--owner", "bench"]
            samples.append(timed(args, env)[0])
            for state in registry.status():
                if state.task == task:
                    registry.release(state.slot_id, "bench", task=task)
    finally:
        registry.close()
    return samples


def _row(name: str, samples: list[float], target: str) -> str:
    runs = ", ".join(f"{s:.2f}" for s in samples)
    return f"| {name} | {statistics.median(samples):.2f} s | {runs} | {target} |"


def _latency_row(name: str, m: dict[str, float], target: str) -> str:
    return (
        f"| {name} | {m['p50']:.1f} ms | {m['p95']:.1f} ms | {m['p99']:.1f} ms | "
        f"{m['max']:.1f} ms | {m['rps']:.0f} req/s | {target} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dsn",
        default=os.environ.get("STAGING_REGISTRY_DSN"),
        help="registry database the bench may write (default: $STAGING_REGISTRY_DSN)",
    )
    parser.add_argument(
        "--inventory",
        default=str(inventory_path()),
        help="inventory TOML (default: $STAGING_INVENTORY or the real one)",
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="per client, after warm-up")
    parser.add_argument("--threads", type=int, default=SERVER_THREADS, help="waitress threads")
    parser.add_argument("--api-only", action="store_true", help="only the API measurement")
    parser.add_argument("--no-results", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    if not args.dsn:
        raise SystemExit("give --dsn or set STAGING_REGISTRY_DSN (a database the bench may write)")
    inventory = load_inventory(args.inventory)
    migrate(args.dsn, inventory)
    env = {"STAGING_REGISTRY_DSN": args.dsn, "STAGING_INVENTORY": str(Path(args.inventory))}
    for var in ("STAGING_API_URL", "STAGING_API_TOKEN"):
        os.environ.pop(var, None)

    api, baseline = api_latency(env, args.clients, args.requests, args.threads)
    lines = [
        f"`GET {SLOTS_PATH}`: {args.clients} closed-loop keep-alive clients, "
        f"{api['count']} timed requests, waitress {args.threads} threads, registry PostgreSQL "
        "on the same machine.",
        "",
        "| server | p50 | p95 | p99 | max | throughput | target |",
        "|---|---|---|---|---|---|---|",
        _latency_row("Staging API (`invoke api.serve`)", api, "p99 <= 20 ms"),
        _latency_row("no-op WSGI app, same waitress (ceiling)", baseline, "-"),
        "",
        "Closed loop: latency = clients / throughput. The gap to the no-op row is the per-request "
        "Python work (Flask, JWT check, one PostgreSQL round trip, JSON), which shares the "
        "machine's cores with PostgreSQL and the load generator.",
    ]
    if not args.api_only:
        status = [timed([INVOKE, "status"], env)[0] for _ in range(RUNS)]
        quick = [timed([INVOKE, "status", "--no-health"], env)[0] for _ in range(RUNS)]
        claims = claim_times(env, args.dsn)
        lines = [
            f"{len(inventory.slots)} slots on {len(inventory.target_hosts())} host(s) "
            f"(`{Path(args.inventory).name}`), health probed through the hosts' nginx; "
            "whole `invoke` processes.",
            "",
            f"| measure | median of {RUNS} | all runs (s) | target |",
            "|---|---|---|---|",
            _row("`invoke status` (with UI/Airflow health)", status, "<= 0.8 s"),
            _row("`invoke status --no-health`", quick, "-"),
            _row("`invoke claim --slot auto`", claims, "<= 0.5 s"),
            "",
            *lines,
        ]
    body = "\n".join(lines)
    print(body)
    if not args.no_results and not args.api_only:
        update_section("Slot claims", body)


if __name__ == "__main__":
    main()
