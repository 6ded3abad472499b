"""Live slot health for the dashboard, checked in the background and shared by every viewer.

A health round is up to 20 HTTPS probes with a few seconds' timeout each, and one SSH probe
per host for the slots' `current` releases (drift). Running one per page
poll would make every refresh as slow as the slowest slot and multiply the probes by the number
of open dashboards, so the answer is cached for `max_age` seconds and refreshed on a background
thread: a poll always answers at once with the last known health (nothing, the first time).
The cache lives in each server process: with N worker processes there are at most N rounds
per `max_age`, whatever the number of viewers, and two polls may show rounds a few seconds
apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from staging_ops.claims.service import live_health
from staging_ops.health import LiveChecks
from staging_ops.inventory import Inventory

Health = dict[int, LiveChecks]
DEFAULT_MAX_AGE = 10.0


class HealthCache:
    """The last health round of every inventory slot, refreshed when older than `max_age` s."""

    def __init__(
        self,
        inventory: Inventory,
        max_age: float = DEFAULT_MAX_AGE,
        check: Callable[[Inventory], Health] | None = None,
    ) -> None:
        self._inventory = inventory
        self._max_age = max_age
        self._check = check or (lambda inv: live_health(inv, list(inv.slots.values())))
        self._lock = threading.Lock()
        self._health: Health = {}
        self._checked_at: datetime | None = None
        self._checked_mono = float("-inf")
        self._running = False

    def snapshot(self) -> tuple[Health, datetime | None]:
        """The last known health and when it was checked; starts a new round if it is stale."""
        with self._lock:
            stale = time.monotonic() - self._checked_mono > self._max_age
            if stale and not self._running:
                self._running = True
                # A daemon thread: a probe hanging on a dead host must not delay shutdown.
                threading.Thread(target=self._refresh, name="slot-health", daemon=True).start()
            return dict(self._health), self._checked_at

    def _refresh(self) -> None:
        health: Health | None = None
        try:
            health = self._check(self._inventory)
        finally:
            with self._lock:
                self._running = False
                if health is not None:
                    self._health = health
                    self._checked_at = datetime.now(UTC)
                    self._checked_mono = time.monotonic()
