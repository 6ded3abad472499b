"""The slot list kept in memory and dropped the moment marts.staging_slots changes.

A long-running reader such as the Staging API would otherwise ask PostgreSQL the same question
for every GET /api/staging/slots. `ReadCache` LISTENs on the channel that migration 0002's
trigger notifies after every statement that writes the table, so:

- a change made through this process's registry drops the value at once (`invalidate`);
- a change made by anyone else (another API worker, `invoke claim` on a laptop, psql) arrives
  as a notification, which every read looks for before answering from memory: one
  non-blocking read of the listening connection, no round trip;
- the listener is connected (and LISTENing) before the first value is loaded, and a value
  loaded while a change arrived is not kept, so no change can slip between load and listen;
- without a listening connection nothing is answered from memory, and a reconnect is tried at
  most once per `RETRY_SECONDS`;
- `MAX_AGE_SECONDS` bounds the age of any answer anyway, for what sends no notification
  (a dropped and re-created table, a listening connection that silently stopped hearing).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import psycopg2
from psycopg2 import sql

from staging_ops.errors import StagingError

CHANNEL = "staging_slots_changed"
MAX_AGE_SECONDS = 2.0
RETRY_SECONDS = 1.0

T = TypeVar("T")
log = logging.getLogger(__name__)


class ReadCache(Generic[T]):
    """One value (what `load` returns), kept until the registry changes; thread-safe."""

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._listener: Any = None
        self._retry_at = 0.0
        # Every change (or loss of the listener) moves the generation on; a value is served
        # only while it carries the current one.
        self._generation = 0
        self._value: T | None = None
        self._value_generation = -1
        self._loaded_at = 0.0

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def get(self, load: Callable[[], T]) -> T:
        """The kept value if nothing changed since it was loaded, else a freshly loaded one."""
        with self._lock:
            self._look_for_changes()
            if (
                self._value is not None
                and self._value_generation == self._generation
                and self._clock() - self._loaded_at < self._max_age
            ):
                return self._value
            generation = self._generation
            loaded_at = self._clock()
        value = load()  # outside the lock: a slow query must not queue every other reader
        with self._lock:
            self._look_for_changes()
            if generation == self._generation and self._listener is not None:
                self._value, self._value_generation, self._loaded_at = value, generation, loaded_at
        return value

    def invalidate(self) -> None:
        """Forget the value (this process just changed the registry)."""
        with self._lock:
            self._generation += 1

    def close(self) -> None:
        with self._lock:
            self._drop_listener()

    def _look_for_changes(self) -> None:
        if self._listener is None:
            self._listen()
            return
        try:
            self._listener.poll()
        except psycopg2.Error as exc:
            log.warning("registry change listener lost (%s); reconnecting", exc)
            self._drop_listener()
            return
        if self._listener.notices:
            # An idle LISTEN session hears nothing but notifications, unless the server is
            # ending it ("FATAL: terminating connection ..."): psycopg2 only files that as a
            # notice and raises on the *next* poll, so this one must not trust the cache.
            log.warning("registry change listener: %s", self._listener.notices[-1].strip())
            self._drop_listener()
            return
        if self._listener.notifies:
            self._listener.notifies.clear()
            self._generation += 1

    def _listen(self) -> None:
        now = self._clock()
        if now < self._retry_at:
            return
        try:
            conn = self._connect()
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        except (psycopg2.Error, StagingError) as exc:
            log.warning("cannot listen for registry changes (%s); reading without a cache", exc)
            self._retry_at = now + RETRY_SECONDS
            return
        self._listener = conn
        self._generation += 1  # whatever was kept before we listened is not trusted

    def _drop_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(psycopg2.Error):
                self._listener.close()
            self._listener = None
        self._generation += 1
