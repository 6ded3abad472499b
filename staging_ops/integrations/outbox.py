"""Events into the outbox, and out of it to GitHub and Linear.

`emit` writes one row per service that is on (config.py) and wakes this process's delivery
thread of each; it never raises and never waits: a deploy goes on at once. The threads
deliver due rows with short timeouts; at exit the CLI waits for them at most EXIT_WAIT
seconds in all (`settle`). What is not delivered by then stays in the outbox for the
Staging API server's loop (`serve_forever`), which retries failed rows with exponential
backoff (`next_delay`, pure) until MAX_ATTEMPTS, then gives them up (counted as failed in
`status`).

A process without database access (an operator on the Staging API) has no outbox: its
events are delivered once by the same thread, not retried.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from staging_ops.errors import StagingError
from staging_ops.integrations import config
from staging_ops.integrations.events import RELEASED, Event
from staging_ops.integrations.http import DeliveryError
from staging_ops.integrations.store import DeploymentStore, MemoryStore, PgStore
from staging_ops.registry import outbox as rows

log = logging.getLogger(__name__)
R = TypeVar("R")

EXIT_WAIT = 2.0  # seconds the CLI waits for its events at exit
BASE_DELAY = 2.0  # the first retry's delay; doubled each attempt
MAX_DELAY = 600.0
MAX_ATTEMPTS = 12  # about 40 minutes of retries in all
LEASE_SECONDS = 30.0  # a row leased by a deliverer that died is free again after this
BATCH = 20
LOOP_INTERVAL = 1.0


def next_delay(attempts: int, retryable: bool) -> float | None:
    """Seconds until the next try after `attempts` failed ones (this one included), or None:
    give up (a request the service refused for good, or too many tries)."""
    if not retryable or attempts >= MAX_ATTEMPTS:
        return None
    return min(BASE_DELAY * 2 ** (attempts - 1), MAX_DELAY)


def retry_time(now: datetime, attempts: int, retryable: bool) -> datetime | None:
    delay = next_delay(attempts, retryable)
    return None if delay is None else now + timedelta(seconds=delay)


# ---- delivering one event -------------------------------------------------------------------


def deliver_one(
    target: str, event: Event, settings: config.Settings, store: DeploymentStore
) -> str:
    """Send `event` to `target`; DeliveryError when the service did not take it."""
    service = settings.service(target)
    if service is None:
        raise DeliveryError(f"{target}: {config.off_reason(target)}", retryable=True)
    # Imported here: requests only in a process that delivers.
    from staging_ops.integrations import github, linear

    if target == "github":
        return github.deliver(event, github.GitHub(service), store)
    return linear.deliver(event, linear.Linear(service))


def deliver_due(
    dsn: str, settings: config.Settings, limit: int = BATCH, targets: list[str] | None = None
) -> int:
    """Lease the due rows (each first in its slot's queue) of `targets` (default: every
    service that is on) and deliver them; how many were tried. Database trouble is left to
    the caller (StagingError)."""
    wanted = [t for t in (targets or settings.targets) if t in settings.targets]
    leased = rows.lease_due(dsn, wanted, LEASE_SECONDS, limit)
    store = PgStore(dsn)
    for row in leased:
        try:
            done = deliver_one(row.target, Event.from_json(row.event), settings, store)
        except DeliveryError as exc:
            when = retry_time(datetime.now(UTC), row.attempts + 1, exc.retryable)
            rows.retry_at(dsn, row.id, when, str(exc))
            log.info("outbox %s %s: %s (next: %s)", row.target, row.id, exc, when or "gave up")
        else:
            rows.delivered(dsn, row.id)
            log.info("outbox %s %s: %s", row.target, row.id, done)
    return len(leased)


# ---- emitting ----------------------------------------------------------------------------------


def emit(registry: Any, event: Event | None, env: dict[str, str] | None = None) -> None:
    """Record `event` for every service that is on, and start delivering it. Never raises:
    a failure here is one line on stderr, and the operation goes on."""
    if event is None:
        return
    settings = config.from_env(env)
    if not settings.targets:
        return
    dsn = getattr(registry, "dsn", None)
    try:
        if dsn:
            payload = event.to_json()
            ids = rows.add(dsn, [(t, event.slot_id, event.kind, payload) for t in settings.targets])
            # One thread per service: a GitHub that hangs holds no Linear event back.
            for target, row_id in zip(settings.targets, ids, strict=True):
                _worker(target).kick(dsn, settings, [row_id], target)
        else:
            for target in settings.targets:
                _worker(target).send_direct(event, settings, target)
    except (StagingError, ValueError) as exc:
        print(
            f"warning: {event.kind} of {event.environment} not recorded for GitHub/Linear: {exc}",
            file=sys.stderr,
        )


def released(registry: Any, inventory: Any, result: R, by: str) -> R:
    """The release hook: when `result` (a ReleaseResult) freed a claim, tell GitHub and
    Linear; `result` back, for the caller to go on with. `inventory` may be None (the web
    app's may not be loaded): the default one is then read."""
    if getattr(result, "released", False):
        try:
            emit(registry, release_event(inventory, result.before, by))  # type: ignore[attr-defined]
        except Exception as exc:  # a hook must never fail the release
            print(f"warning: release not told to GitHub/Linear: {exc}", file=sys.stderr)
    return result


def release_event(inventory: Any, before: Any, by: str) -> Event | None:
    """The Event of a release of the claim `before` (a SlotState)."""
    from staging_ops.integrations.slots import slot_facts

    if not config.from_env().targets:
        return None
    facts = slot_facts(inventory, before.slot_id, before.identifier, before.subdomain)
    return Event(
        kind=RELEASED,
        slot_id=before.slot_id,
        environment=before.identifier,
        url=facts.url,
        commit=before.commit or "",
        branch=before.branch or "",
        task=before.task,
        repository=facts.repository,
        log_url=facts.log_url,
        by=by,
    )


# ---- the CLI's delivery thread -----------------------------------------------------------------


class _Worker:
    """A daemon thread per service in a process: delivers the rows of its service this
    process wrote (and whatever else of it is due), until they are done or only waiting for a
    retry. One per service, so a service that hangs holds back no other's events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._jobs: list[Callable[[], bool]] = []
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None

    def _start(self, job: Callable[[], bool]) -> None:
        with self._lock:
            self._jobs.append(job)
            self._idle.clear()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
                self._thread.start()
        _wait_at_exit()
        self._wake.set()

    def kick(self, dsn: str, settings: config.Settings, ids: list[int], target: str) -> None:
        waiting = list(ids)

        def job() -> bool:
            tried = deliver_due(dsn, settings, targets=[target])
            waiting[:] = rows.open_ids(dsn, waiting)
            # Done when ours are delivered or given up, or nothing was due (ours wait for a
            # retry, or behind an earlier row that does: the server's loop has them then).
            return not waiting or tried == 0

        self._start(job)

    def send_direct(self, event: Event, settings: config.Settings, target: str) -> None:
        def job() -> bool:
            try:
                deliver_one(target, event, settings, _memory_store)
            except DeliveryError as exc:
                log.info("%s: %s (no outbox: not retried)", target, exc)
            return True

        self._start(job)

    def _run(self) -> None:
        while True:
            with self._lock:
                jobs = list(self._jobs)
                if not jobs:
                    self._idle.set()
                    self._thread = None
                    return
            for job in jobs:
                try:
                    finished = job()
                except StagingError as exc:
                    log.info("outbox: %s", exc)
                    finished = True
                if finished:
                    with self._lock:
                        self._jobs.remove(job)
            self._wake.wait(0.2)
            self._wake.clear()

    def wait(self, timeout: float) -> bool:
        return self._idle.wait(timeout)


_memory_store = MemoryStore()
_workers: dict[str, _Worker] = {}
_instance_lock = threading.Lock()


def _worker(target: str) -> _Worker:
    with _instance_lock:
        return _workers.setdefault(target, _Worker())


_exit_wait_registered = False


def _wait_at_exit() -> None:
    global _exit_wait_registered
    with _instance_lock:
        if not _exit_wait_registered:
            _exit_wait_registered = True
            atexit.register(settle)


def settle(timeout: float = EXIT_WAIT) -> bool:
    """Wait up to `timeout` in all for this process's events to be delivered (or left to
    retry); whether everything was done. Registered at exit by the first emit."""
    deadline = time.monotonic() + timeout
    with _instance_lock:
        workers = list(_workers.values())
    return all(w.wait(max(0.0, deadline - time.monotonic())) for w in workers)


# ---- the server's loop -------------------------------------------------------------------------


def serve_forever(dsn: str, stop: threading.Event, interval: float = LOOP_INTERVAL) -> None:
    """Deliver due rows until `stop` is set: the Staging API server's delivery loop. The
    settings are read from the environment each round."""
    while not stop.is_set():
        settings = config.from_env()
        tried = 0
        if settings.targets:
            try:
                tried = deliver_due(dsn, settings)
            except StagingError as exc:
                log.warning("outbox: %s", exc)
        if tried < BATCH:
            stop.wait(interval)


def start_loop(dsn: str) -> threading.Event | None:
    """The loop in a daemon thread of this process, once; its stop event (None: already
    running, or no service is on)."""
    global _loop_stop
    with _instance_lock:
        if _loop_stop is not None or not config.from_env().targets:
            return None
        _loop_stop = threading.Event()
        threading.Thread(
            target=serve_forever, args=(dsn, _loop_stop), name="outbox-loop", daemon=True
        ).start()
        return _loop_stop


_loop_stop: threading.Event | None = None


def stop_loop() -> None:
    """Stop this process's loop (tests; a server's loop ends with its process)."""
    global _loop_stop
    with _instance_lock:
        if _loop_stop is not None:
            _loop_stop.set()
            _loop_stop = None
