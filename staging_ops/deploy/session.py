"""One deploy's (or rollback's) hold on its slot: the SSH connection, the slot's deploy lock,
Ctrl-C and SIGTERM turned into Stop, and everything closed at the end (the lock goes with the
connection). Shared by deploy and rollback; the steps take the Deployer it opens."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from staging_ops import output, remote
from staging_ops.deploy import lock as slot_lock
from staging_ops.errors import StagingError
from staging_ops.inventory import Inventory, Slot
from staging_ops.processes import ProcessSpec, default_spec
from staging_ops.render import candidate_units, slot_units
from staging_ops.slot_layout import SlotPaths

EXIT_SIGINT, EXIT_SIGTERM = 130, 143


class Stop(BaseException):
    """Ctrl-C or SIGTERM during a deploy or rollback. Not a KeyboardInterrupt: Fabric catches
    that while a remote command runs (it sends ^C and goes on waiting), which would lose it;
    this one surfaces as soon as the running remote command has ended."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class Interrupted(StagingError):
    """Ctrl-C or SIGTERM stopped a deploy or rollback; the message says what state it left."""

    def __init__(self, message: str, stop: Stop):
        super().__init__(message)
        self.exit_code = EXIT_SIGTERM if stop.signum == signal.SIGTERM else EXIT_SIGINT


class Deployer:
    """One deploy (or rollback) of one slot on one SSH connection, under the slot's lock: what
    every step needs (the slot, its paths and units, the connection) and what one step learns
    for a later one (each unit's NRestarts before our restart, for verify; the process spec
    of the release it is making live, whose units are the ones it starts and judges)."""

    def __init__(self, inventory: Inventory, slot: Slot, log: output.StepLog, operator: str):
        self.inventory = inventory
        self.slot = slot
        self.host = inventory.host_of(slot)
        self.paths = SlotPaths(self.host, slot)
        self.app = inventory.app
        self.spec: ProcessSpec = default_spec(self.app)
        self.log = log
        self.operator = operator
        self.remote: remote.RemoteHost | None = None
        self.lock: slot_lock.SlotLock | None = None
        self.restarts_before: dict[str, int] = {}
        # When the hand-over restarted the main web units (time.monotonic()): app.json's
        # initialDelay of the main instances counts from then (the workers' settle, from the
        # end of their own restart: heartbeat.workers_restarted).
        self.handed_over = 0.0
        # When the candidate units started (time.monotonic()), for their initialDelay; None
        # before a candidate start in this run.
        self.candidate_started: float | None = None
        # What the run knows of itself, for its messages and the history (the log is output):
        # the step that failed last, and whether a step that changes something completed.
        self.last_failed: str | None = None
        self.changed = False

    @property
    def failed_step(self) -> str:
        """The name of the step that failed last (the one a message names), or "deploy"."""
        return self.last_failed or "deploy"

    @contextmanager
    def step(self, name: str) -> Iterator[output.StepRecord]:
        """One printed step (output.StepLog); one that fails is remembered as the failed step."""
        record = None
        try:
            with self.log.step(name) as record:
                yield record
        finally:
            if record is not None and record.failed:
                self.last_failed = name

    def use_spec(self, spec: ProcessSpec) -> None:
        """From now on, the units are those of `spec`'s processes."""
        self.spec = spec

    @property
    def units(self) -> list[str]:
        """The main units of the spec's processes: web first, then airflow, then workers."""
        ordered = (*self.spec.port_types, *self.spec.workers)
        return slot_units(self.app, self.slot, ordered)

    @property
    def web_units(self) -> list[str]:
        """The main units of the spec's port types (web, airflow): those with a candidate."""
        return slot_units(self.app, self.slot, self.spec.port_types)

    @property
    def worker_units(self) -> list[str]:
        return slot_units(self.app, self.slot, self.spec.workers)

    @property
    def candidate_units(self) -> list[str]:
        return candidate_units(self.app, self.slot, self.spec.port_types)

    def open(self) -> None:
        """The `connect` and `lock` steps."""
        with self.step("connect"):
            self.remote = remote.connect(self.host)
        with self.step("lock") as rec:
            self.lock = self.take_lock()
            if self.lock.warning:
                rec.outcome, rec.detail = "warn", self.lock.warning

    def take_lock(self, wait: float = 0.0) -> slot_lock.SlotLock:
        """The slot's lock on our connection (waiting up to `wait` s for a holder to let go)."""
        assert self.remote is not None
        return slot_lock.acquire_waiting(
            self.remote,
            self.paths.lock,
            self.slot.identifier,
            slot_lock.hung_after(self.app.verify_timeout),
            self.operator,
            wait,
        )

    def close(self) -> None:
        if self.lock:
            self.lock.release()
        if self.remote:
            self.remote.close()

    def run(
        self,
        command: str,
        check: bool = True,
        guarded: bool = False,
        on_line: Callable[[str], None] | None = None,
    ) -> tuple[int, str, str]:
        """One remote command; `guarded`: only while our lock was not taken over (else
        LockLost), for every step that changes what the slot serves or what rollback sees;
        `on_line` gets its stdout lines as they come."""
        assert self.remote is not None
        if guarded and self.lock:
            return self.lock.run(self.remote, command, check=check, on_line=on_line)
        return self.remote.run(command, check=check, on_line=on_line)

    # The two steps a deploy whose lock was taken over must refuse, callable on their own.


@contextmanager
def session(deployer: Deployer) -> Iterator[None]:
    """The deployer connected and locked for the block, Ctrl-C and SIGTERM raising Stop; an
    interruption that reaches here (the switch rolls back on its own) leaves as Interrupted.
    Always closed: the lock goes with the connection."""
    try:
        with signals_stop():
            deployer.open()
            yield
    except Stop as stop:
        raise Interrupted(
            f"{deployer.slot.identifier}: interrupted during {deployer.failed_step}", stop
        ) from None
    finally:
        deployer.close()


@contextmanager
def signals_stop() -> Iterator[None]:
    """For the duration of a deploy or rollback, Ctrl-C and SIGTERM raise Stop, so either
    rolls back a switched release instead of leaving a broken one live."""
    with _signal_handlers(_raise_stop):
        yield


@contextmanager
def signals_ignored() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while a rollback runs: stopping it halfway would leave the
    release it is rolling away from (or nothing) in place. It is bounded by verify's timeout."""
    with _signal_handlers(signal.SIG_IGN):
        yield


@contextmanager
def _signal_handlers(handler: Any) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    before = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, previous in before.items():
            signal.signal(signum, previous)


def _raise_stop(signum: int, frame: Any) -> None:
    raise Stop(signum)
