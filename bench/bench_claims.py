"""Slot-claim speed: `invoke status` and `invoke claim` wall time (whole processes, median of 5)
and the Staging API's GET /api/staging/slots latency with 50 concurrent clients on loopback.
Targets (issue 4): status <= 0.8 s, claim <= 0.5 s, API p99 <= 20 ms.

Needs a registry database it may write to (it migrates it and claims/releases `BENCH-n` tasks),
and wrk (Debian package `wrk`) for the load:
  STAGING_REGISTRY_DSN=postgresql://... python -m bench.bench_claims [--inventory PATH]

The API runs as operators run it (`invoke api.serve`: granian, one worker process per core).
wrk keeps 50 connections busy, each sending its next request as soon as the previous answer
arrived (closed loop), and reports latency percentiles from its histogram; it is written in
C, so the load generator takes little of the CPU the server needs. For scale, the same load is
also run against a no-op WSGI app (bench/noop_app.py) under the same server settings: the
ceiling of any app served that way on this machine.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import IO

from bench.results import INVOKE, ROOT, timed, update_section
from staging_ops.inventory import Inventory, inventory_path, load_inventory
from staging_ops.registry import PostgresRegistry, migrate
from staging_ops.web.auth import mint_token
from staging_ops.web.server import default_workers

RUNS = 5
LOAD_RUNS = 3
CHURN_INTERVAL = 0.1  # seconds between claim+release pairs: a write every 50 ms
SLOTS_PATH = "/api/staging/slots"
NOOP_SERVER = """
import sys
from staging_ops.web.server import ServeOptions, serve
serve("bench.noop_app:app", ServeOptions(port=int(sys.argv[1]), workers=int(sys.argv[2])))
"""
WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _field(pattern: str, output: str) -> str:
    found = re.search(pattern, output, re.M)
    if found is None:
        raise SystemExit(f"cannot read wrk's output ({pattern}):\n{output}")
    return found.group(1)


def _ms(text: str) -> float:
    """wrk's `812.00us`, `10.50ms` or `1.02s` in milliseconds."""
    unit = text.lstrip("0123456789.")
    return float(text[: -len(unit)]) * WRK_UNITS[unit]


def parse_wrk(output: str) -> dict[str, float]:
    """p50/p90/p99/max (ms) and throughput from `wrk --latency`; refuses errors and non-2xx."""
    for bad in ("Non-2xx or 3xx responses", "Socket errors"):
        if bad in output:
            raise SystemExit(f"wrk saw failures:\n{output}")
    found = {f"p{q}": _ms(_field(rf"^\s+{q}%\s+(\S+)$", output)) for q in (50, 90, 99)}
    found["max"] = _ms(_field(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", output))
    found["rps"] = float(_field(r"^Requests/sec:\s+([\d.]+)", output))
    found["count"] = float(_field(r"^\s+(\d+) requests in", output))
    return found


def load(
    port: int, path: str, headers: dict[str, str], clients: int, seconds: int
) -> dict[str, float]:
    """One wrk run: `clients` closed-loop connections for `seconds`."""
    args = ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency"]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    result = subprocess.run(
        [*args, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True
    )
    return parse_wrk(result.stdout)


def load_runs(
    port: int, path: str, headers: dict[str, str], clients: int, seconds: int
) -> list[dict[str, float]]:
    load(port, path, headers, clients, 1)  # warm-up: imports, pools, caches
    return [load(port, path, headers, clients, seconds) for _ in range(LOAD_RUNS)]


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
            server.wait(15)


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


@contextmanager
def claims_meanwhile(dsn: str, interval: float) -> Iterator[list[int]]:
    """Claim and release a QA slot every `interval` seconds from this process (as `invoke
    claim` on a laptop would) until the block ends; yields the running count of writes."""
    writes = [0]
    stop = threading.Event()

    def churn() -> None:
        registry = PostgresRegistry(dsn)
        try:
            while not stop.wait(interval):
                held = registry.claim(None, "BENCH-99", "bench", timedelta(hours=1))
                registry.release(held.slot.slot_id, "bench", task="BENCH-99")
                writes[0] += 2
        finally:
            registry.close()

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        yield writes
    finally:
        stop.set()
        thread.join(10)


def api_latency(
    env: dict[str, str], clients: int, seconds: int, workers: int
) -> dict[str, list[dict[str, float]]]:
    """wrk runs against the Staging API (reads only, then with claims going on) and against a
    no-op app under the same server settings."""
    secret = secrets.token_hex(32)
    port = _free_port()
    api_env = {**os.environ, **env, "STAGING_API_JWT_SECRET": secret}
    serve = [INVOKE, "api.serve", "--port", str(port), "--workers", str(workers)]
    runs = {}
    with serving(serve, api_env, port):
        auth = {"Authorization": f"Bearer {mint_token(secret, 'bench')}"}
        runs["api"] = load_runs(port, SLOTS_PATH, auth, clients, seconds)
        with claims_meanwhile(env["STAGING_REGISTRY_DSN"], CHURN_INTERVAL) as writes:
            runs["churn"] = load_runs(port, SLOTS_PATH, auth, clients, seconds)
        if writes[0] < seconds / CHURN_INTERVAL:
            raise SystemExit(f"the claims meanwhile did not run ({writes[0]} writes)")
        runs["churn"][0]["writes"] = writes[0]
    port = _free_port()
    noop = [sys.executable, "-c", NOOP_SERVER, str(port), str(workers)]
    with serving(noop, dict(os.environ), port):
        runs["noop"] = load_runs(port, "/", {}, clients, seconds)
    return runs


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


def _latency_row(name: str, runs: list[dict[str, float]], target: str) -> str:
    """Median over the runs of each figure, and every run's p99."""

    def mid(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    p99s = ", ".join(f"{r['p99']:.1f}" for r in runs)
    return (
        f"| {name} | {mid('p50'):.1f} ms | {mid('p90'):.1f} ms | {mid('p99'):.1f} ms | "
        f"{p99s} | {mid('max'):.1f} ms | {mid('rps'):.0f} req/s | {target} |"
    )


def status_only(inventory: Inventory, env: dict[str, str], record: bool) -> None:
    """`invoke status` alone: its live checks (HTTPS health, and one SSH probe per host for
    the slots' `current` releases, drift) against the registry read, without the API load."""
    registry = PostgresRegistry(env["STAGING_REGISTRY_DSN"])
    try:
        deployed = sum(1 for s in registry.status() if s.commit)
    finally:
        registry.close()
    lines = [
        f"{len(inventory.slots)} slots on {len(inventory.target_hosts())} host(s), {deployed} "
        f"deployed; whole `invoke` processes; load average {os.getloadavg()[0]:.1f} at the "
        "start (other work on the machine shows in the figures).",
        "",
        f"| measure | median of {RUNS} | all runs (s) | target |",
        "|---|---|---|---|",
    ]
    for argv, target in ((["status"], "<= 0.8 s"), (["status", "--no-health"], "-")):
        times = [timed([INVOKE, *argv], env)[0] for _ in range(RUNS)]
        lines.append(_row(f"`invoke {' '.join(argv)}`", times, target))
    print("\n".join(lines))
    if record:
        update_section("invoke status", "\n".join(lines))


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
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="server worker processes"
    )
    parser.add_argument("--api-only", action="store_true", help="only the API measurement")
    parser.add_argument(
        "--status-only",
        action="store_true",
        help="only `invoke status` (with and without health), its own section of RESULTS.md",
    )
    parser.add_argument("--no-results", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    if not args.dsn:
        raise SystemExit("give --dsn or set STAGING_REGISTRY_DSN (a database the bench may write)")
    if shutil.which("wrk") is None and not args.status_only:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    inventory = load_inventory(args.inventory)
    migrate(args.dsn, inventory)
    env = {"STAGING_REGISTRY_DSN": args.dsn, "STAGING_INVENTORY": str(Path(args.inventory))}
    for var in ("STAGING_API_URL", "STAGING_API_TOKEN"):
        os.environ.pop(var, None)

    if args.status_only:
        status_only(inventory, env, not args.no_results)
        return
    runs = api_latency(env, args.clients, args.seconds, args.workers)
    api = runs["api"]
    churn_row = (
        f"Staging API, a claim or release every {CHURN_INTERVAL * 500:.0f} ms meanwhile "
        f"({runs['churn'][0]['writes']:.0f} writes)"
    )
    lines = [
        f"`GET {SLOTS_PATH}`: {args.clients} closed-loop clients (wrk, 2 threads), "
        f"{LOAD_RUNS} runs of {args.seconds} s ({int(sum(r['count'] for r in api))} requests), "
        f"granian, {args.workers} worker processes, registry PostgreSQL on the same machine; "
        "medians over the runs.",
        "",
        "| server | p50 | p90 | p99 | p99 of each run | max | throughput | target |",
        "|---|---|---|---|---|---|---|---|",
        _latency_row("Staging API (`invoke api.serve`)", api, "p99 <= 20 ms"),
        _latency_row(churn_row, runs["churn"], "-"),
        _latency_row("no-op WSGI app, same server (ceiling)", runs["noop"], "-"),
        "",
        "Each worker answers from the slot list it keeps in memory until a change (its own, "
        "another worker's through their shared stamp, anyone else's by PostgreSQL notification), "
        "and from the tokens it has already verified (expiry still checked), so a read costs "
        "Flask's routing, a look at the stamp and one non-blocking look at the listening "
        "connection. Closed "
        "loop: latency = clients / throughput, on 2 cores shared with wrk. In the second row "
        "another process claims and releases a slot meanwhile (through PostgreSQL, so each "
        "change reaches the workers as a notification and the next read loads the list again).",
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
