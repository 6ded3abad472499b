"""A client asking a slot's /api/version through nginx about 50 times a second while a deploy
runs (and for a while after): what the issue's "never drop a request, never serve a broken
release" is measured with, by tests/sandbox/test_deploy_handover.py and bench/bench_deploy.py.

Requests go one after another on one kept-alive connection to nginx (as a browser's would),
so the order of the answers is the order in which the slot gave them."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

from staging_ops.health import slot_get, slot_session
from staging_ops.inventory import Host, Slot

INTERVAL = 0.02  # 50 requests a second


@dataclass
class Probe:
    """Start it, run the deploy, `stop(after=2)`; then read `answers` (each the commit that
    answered, or "failed: ..." for a request that did not get a 200 with a commit)."""

    host: Host
    slot: Slot
    # Another path (Airflow's health): its answer is "ok" for a 200, "failed: ..." otherwise.
    path: str = "/api/version"
    answers: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Probe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(after=0)

    def stop(self, after: float = 2.0) -> None:
        time.sleep(after)
        self._stop.set()
        if self._thread:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        session = slot_session(self.slot)
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                self.answers.append(self._ask(session))
                self._stop.wait(max(0.0, INTERVAL - (time.monotonic() - began)))
        finally:
            session.close()

    def _ask(self, session: requests.Session) -> str:
        try:
            response = slot_get(self.host, self.slot, self.path, 10, session=session)
            if response.status_code != 200:
                return f"failed: HTTP {response.status_code}"
            if self.path != "/api/version":
                return "ok"
            return str(response.json().get("commit"))
        except (OSError, ValueError) as exc:  # requests' errors are OSErrors
            return f"failed: {type(exc).__name__}"

    @property
    def failed(self) -> int:
        return sum(1 for a in self.answers if a.startswith("failed"))

    def counts(self) -> Counter[str]:
        return Counter(self.answers)

    def sequence(self) -> list[str]:
        """The distinct answers in the order they first came, each run collapsed: a clean
        switch is [old, new]; [old, new, old] went back."""
        runs: list[str] = []
        for answer in self.answers:
            if not runs or runs[-1] != answer:
                runs.append(answer)
        return runs
