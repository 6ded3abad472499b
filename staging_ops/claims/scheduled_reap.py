"""The scheduled reap: `reap` every few minutes without anyone typing it, run by the API server.

Why the API server and not a systemd timer on the droplet: the droplet holds no registry
credentials (its slots have their own databases; the registry DSN lives with operators and the
API server), and the API server already has them and runs all the time. `invoke api.serve`
(and `python -m staging_ops.web`, which the sandbox runs) starts this module as one child
process per server — not one per granian worker — and starts it again if it dies.

Each round takes a PostgreSQL session advisory lock with `pg_try_advisory_lock`: two servers
on one registry never reap at the same time (the one that does not get the lock skips the
round), and a reaper that dies mid-round lets go of it with its connection. The releases are
`claims.service.reap`'s own (expired claims, claims whose branch is merged or deleted, each
conditional on the claim judged), recorded `via reap`. Delivery ids older than 30 days are
forgotten in the same round.

STAGING_REAP_INTERVAL: seconds between rounds, 1..300 (default 300); `off` or 0: no reaper.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping

from staging_ops.claims.reap import ReapReport, reap
from staging_ops.errors import BadInput, StagingError
from staging_ops.inventory import Inventory, load_inventory

INTERVAL_ENV = "STAGING_REAP_INTERVAL"
DEFAULT_INTERVAL = 300.0
MAX_INTERVAL = 300.0
# pg_try_advisory_lock key of the reapers ("STGREAP!" in ASCII); migrations use another.
REAP_LOCK = 0x5354_4752_4541_5021
REAPER = "scheduled-reap"
RESTART_DELAY = 5.0
log = logging.getLogger(__name__)


def interval_from_env(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between rounds from STAGING_REAP_INTERVAL; None when it is off."""
    text = (os.environ if env is None else env).get(INTERVAL_ENV, "").strip().lower()
    if not text:
        return DEFAULT_INTERVAL
    if text in ("off", "0"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_INTERVAL:
        raise BadInput(f"{INTERVAL_ENV} must be seconds between 1 and 300, or off (got {text!r})")
    return seconds


def reap_once(dsn: str, inventory: Inventory) -> ReapReport | None:
    """One round under the advisory lock; None when another reaper holds it."""
    from staging_ops.registry import PostgresRegistry, deliveries
    from staging_ops.registry.dsn import connect

    conn = connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", (REAP_LOCK,))
            if not cur.fetchone()[0]:
                return None
            try:
                registry = PostgresRegistry(dsn, via="reap")
                try:
                    report = reap(registry, inventory, by=REAPER)
                finally:
                    registry.close()
                deliveries.prune(dsn)
                return report
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", (REAP_LOCK,))
    finally:
        conn.close()


def _describe(report: ReapReport) -> list[str]:
    lines = [
        f"slot {item.slot.slot_id} ({item.slot.task}): {item.reason}: {item.outcome}"
        for item in report.items
    ]
    if report.problem:
        lines.append(report.problem)
    return lines


def run(
    dsn: str,
    inventory: Inventory,
    interval: float,
    *,
    keep_going: Callable[[], bool],
    say: Callable[[str], None],
) -> None:
    """A round now, then one every `interval` seconds while `keep_going()`; a failed round is
    reported and the next one tried."""
    while keep_going():
        try:
            report = reap_once(dsn, inventory)
            for line in _describe(report) if report else []:
                say(f"scheduled reap: {line}")
        except StagingError as exc:
            say(f"scheduled reap failed: {exc}")
        deadline = time.monotonic() + interval
        while keep_going() and time.monotonic() < deadline:
            time.sleep(min(0.2, interval))


def main() -> int:
    """The reaper process: runs until its parent (the API server) is gone or it is stopped."""
    parent = os.getppid()
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        interval = interval_from_env()
        if interval is None:
            say(f"scheduled reap is off ({INTERVAL_ENV})")
            return 0
        from staging_ops.registry.from_env import require_dsn

        dsn, inventory = require_dsn(), load_inventory()
    except BadInput as exc:
        say(f"scheduled reap is off: {exc}")
        return 0  # a configuration the server runs without: not restarted
    run(
        dsn,
        inventory,
        interval,
        keep_going=lambda: not stopping.is_set() and os.getppid() == parent,
        say=say,
    )
    return 0


class ReaperSupervisor:
    """The reaper as a child process of the server: started now, started again when it dies
    (not when it exits 0: it is off by configuration), stopped by `stop()`. A process of its
    own rather than a thread, so granian forking its workers never copies a reaper's
    connection or locks."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._watch, name="reaper", daemon=True)

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "staging_ops.claims.scheduled_reap"], stdin=subprocess.DEVNULL
        )

    def start(self) -> ReaperSupervisor:
        self._process = self._spawn()  # on this thread, before granian forks
        self._thread.start()
        return self

    def _watch(self) -> None:
        while self._process is not None:
            code = self._process.wait()
            if self._stopping.wait(0 if code == 0 else RESTART_DELAY) or code == 0:
                return
            print(f"scheduled reap exited {code}; starting it again", file=sys.stderr)
            self._process = self._spawn()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._thread.join(timeout)


if __name__ == "__main__":
    sys.exit(main())
