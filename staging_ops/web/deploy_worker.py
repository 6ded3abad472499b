"""`python -m staging_ops.web.deploy_worker`: runs the server's queued deploys and rollbacks
(registry/deploy_queue.py), one at a time, beside the Staging API server; start one or more.

Each request runs through the CLI's own code (deploy.recipes.deploy / rollback: the same
steps, the slot's deploy lock and fence on the droplet, the same history), on the inventory's
hosts with their SSH key and pinned host keys, recording `via api` or `via push` in the
slot's history. While it runs, a heartbeat thread renews the worker's lease and writes the
request's progress (the running step, the steps done, their lines) every HEARTBEAT seconds.

A worker killed with SIGKILL stops beating: once its lease expires the next worker takes the
request again (a deploy killed at any step leaves the droplet working, and the slot's lock
went with the dead worker's SSH connection), or fails it after MAX_ATTEMPTS takes. A request
never runs on two workers at once: the queue hands a slot's request to one worker, and a
worker that lost its lease cannot write to its request any more, while the droplet's slot
lock refuses a second deploy of the slot while the first still holds it. SIGTERM or Ctrl-C
stops a worker: a deploy it runs is interrupted the CLI's way (rolled back from the switch
on) and its request failed, saying so.

Opt-in: `[deploys] server = true` in the inventory (else the worker refuses to start, exit 2).
Needs STAGING_REGISTRY_DSN, STAGING_INVENTORY and, for password hosts, the slots'
credentials (STAGING_SLOT_CREDENTIALS), as `invoke deploy` does.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from staging_ops import output
from staging_ops.errors import BadInput, StagingError
from staging_ops.inventory import Inventory
from staging_ops.jsondoc import JSONObject
from staging_ops.registry.deploy_queue import DeployQueue
from staging_ops.slots.deploy_requests import (
    DONE,
    FAILED,
    HEARTBEAT,
    LEASE,
    DeployRequest,
    Progress,
    already_serving,
    progress_text,
)

log = logging.getLogger(__name__)
POLL = 0.25  # seconds between looks at the queue when it is empty
ERROR_PAUSE = 2.0  # seconds before looking again after the registry failed
MAX_LINES = 400  # a request keeps its run's last lines, not an unbounded log


@dataclass
class ProgressLog(output.StepLog):
    """A deploy's StepLog that also knows the step running now (and its number), for the
    request's progress; printed nowhere (quiet), kept in `lines`."""

    quiet: bool = True
    running: str | None = None
    number: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def step(self, name: str) -> Iterator[output.StepRecord]:
        with self.lock:
            self.number += 1
            self.running = name
        try:
            with super().step(name) as record:
                yield record
        finally:
            with self.lock:
                self.running = None

    def progress(self, line: str) -> None:
        self.emit(f"  … {line}")

    def emit(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)
            del self.lines[:-MAX_LINES]

    def snapshot(self) -> Progress:
        """What the request row shows now: step, steps done, lines."""
        with self.lock:
            step = progress_text(self.number, self.running) if self.running else None
            return Progress(
                step or (self.steps[-1].step if self.steps else "starting"),
                [s.as_json() for s in self.steps],
                list(self.lines),
            )


class Heartbeat:
    """A thread renewing `worker`'s lease on a request and writing its progress."""

    def __init__(
        self, queue: DeployQueue, request: DeployRequest, worker: str, log_: ProgressLog, lease
    ) -> None:
        self.queue, self.request, self.worker, self.log, self.lease = (
            queue,
            request,
            worker,
            log_,
            lease,
        )
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            try:
                if not self.queue.heartbeat(
                    self.request.id, self.worker, self.log.snapshot(), self.lease
                ):
                    self.lost = True
                    log.warning("request %s is no longer this worker's", self.request.id)
                    return
            except StagingError as exc:  # the registry away for a moment: the next beat
                log.warning("heartbeat of request %s failed: %s", self.request.id, exc)


class Worker:
    """One worker: takes a request, runs it, records how it ended, takes the next."""

    def __init__(
        self, inventory: Inventory, dsn: str, lease: timedelta = LEASE, name: str | None = None
    ) -> None:
        from staging_ops.registry import PostgresRegistry

        self.inventory = inventory
        self.queue = DeployQueue(dsn)
        self.registry = PostgresRegistry(dsn)
        self.lease = lease
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stopping = False

    def close(self) -> None:
        self.queue.close()
        self.registry.close()

    def run_next(self) -> DeployRequest | None:
        """Take and run one request; the request as it ended, or None if none was waiting."""
        request = self.queue.claim(self.name, lease=self.lease)
        if request is None:
            return None
        self.run(request)
        return self.queue.get(request.id)

    def run(self, request: DeployRequest) -> None:
        progress = ProgressLog()
        with Heartbeat(self.queue, request, self.name, progress, self.lease):
            state, result, error = self._outcome(request, progress)
        self.queue.finish(
            request.id, self.name, state, progress.snapshot(), result=result, error=error
        )
        log.info("request %s (%s slot %s): %s", request.id, request.kind, request.slot_id, state)

    def _outcome(
        self, request: DeployRequest, progress: ProgressLog
    ) -> tuple[str, JSONObject | None, str | None]:
        from staging_ops.deploy import recipes
        from staging_ops.deploy.session import Interrupted

        slot = self.inventory.slots.get(request.slot_id)
        if slot is None:
            return FAILED, None, f"slot {request.slot_id} is not in the inventory"
        registry = self.registry.acting_via(request.via)
        try:
            if request.kind == "deploy":
                if already_serving(request, registry.get(slot.id).commit):
                    return DONE, {"skipped": f"{slot.identifier} already serves it"}, None
                result = recipes.deploy(
                    self.inventory,
                    slot,
                    request.branch or "",
                    registry=registry,
                    operator=request.requested_by,
                    task=request.task,
                    log=progress,
                    # A push deploys the commit it pushed; the API, the branch's head.
                    commit=request.commit if request.via == "push" else None,
                )
            else:
                result = recipes.rollback(
                    self.inventory,
                    slot,
                    registry=registry,
                    operator=request.requested_by,
                    to=request.target,
                    task=request.task,
                    log=progress,
                )
        except Interrupted as exc:  # SIGTERM or Ctrl-C: the deploy handled it; stop after it
            self.stopping = True
            return FAILED, None, str(exc)
        except StagingError as exc:
            return FAILED, None, str(exc)
        except Exception as exc:  # a bug: the request must still end, saying so
            log.exception("request %s", request.id)
            return FAILED, None, f"internal error: {type(exc).__name__}: {exc}"
        return DONE, result.as_dict(), None

    def loop(self, poll: float = POLL) -> None:
        """Until SIGTERM/Ctrl-C (between requests; during one, the deploy's own handling)."""
        while not self.stopping:
            try:
                ran = self.run_next()
            except StagingError as exc:  # the registry away, or not migrated yet
                log.error("deploy queue: %s", exc)
                time.sleep(ERROR_PAUSE)
                continue
            if ran is None:
                time.sleep(poll)


def server_deploys_inventory() -> Inventory:
    """The inventory, refusing one without `[deploys] server = true` (BadInput)."""
    from staging_ops import slot_access
    from staging_ops.inventory import load_inventory

    inventory = load_inventory()
    if not inventory.deploys.server:
        raise BadInput(
            f"{inventory.path}: server deploys are off: set `[deploys] server = true` to let"
            " the server run deploys"
        )
    # Deploys verify through nginx: a password host's slots need the credentials, checked
    # here as `invoke deploy` checks them, before any request is taken.
    problem = slot_access.missing_credentials(inventory.target_hosts())
    if problem:
        raise BadInput(problem)
    return inventory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m staging_ops.web.deploy_worker", description=__doc__
    )
    parser.add_argument(
        "--lease", type=float, default=LEASE.total_seconds(), help="seconds a lease lasts"
    )
    parser.add_argument("--once", action="store_true", help="run one request (if any) and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s deploy-worker %(message)s")
    try:
        if not 1 <= args.lease <= 3600:
            raise BadInput(f"--lease must be from 1 to 3600 seconds (got {args.lease})")
        from staging_ops.registry.from_env import require_dsn

        worker = Worker(server_deploys_inventory(), require_dsn(), timedelta(seconds=args.lease))
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StagingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    def stop(signum: int, frame: Any) -> None:
        worker.stopping = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    print(f"deploy worker {worker.name} waiting for requests", flush=True)
    try:
        if args.once:
            worker.run_next()
        else:
            worker.loop()
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
