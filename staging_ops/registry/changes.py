"""The slot list kept in memory and dropped the moment marts.staging_slots changes.

A long-running reader such as the Staging API would otherwise ask PostgreSQL the same question
for every GET /api/staging/slots. `ReadCache` drops its value when:

- this process changed the registry (`invalidate`, called after the commit);
- another process of the same server did: it writes new bytes into a `SharedStamp` (eight
  bytes of shared memory) after its commit, and every read compares them first. So a client
  that wrote through one worker and reads through another always sees its write;
- anyone else did (`invoke claim` on a laptop, psql): migration 0002's trigger NOTIFYs after
  every statement that writes the table, and every read looks for that notification first,
  without blocking and without a round trip. It arrives within a millisecond or so of the
  commit, asynchronously: a read in that moment still gets the previous list;
- the listening connection was lost: nothing is answered from memory until a new one listens
  (a reconnect is tried at most once per `RETRY_SECONDS`);
- it is `MAX_AGE_SECONDS` old, for what sends no notification (a dropped and re-created table,
  a listening connection that silently stopped hearing).

The listener is connected (and LISTENing) before the first value is loaded, and a value loaded
while a change arrived is not kept, so no change can slip between load and listen.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import psycopg2
from psycopg2 import sql

from staging_ops.errors import StagingError

CHANNEL = "staging_slots_changed"
MAX_AGE_SECONDS = 2.0
RETRY_SECONDS = 1.0
STAMP_BYTES = 8
# Set by the server for its worker processes: the path of their SharedStamp.
SHARED_STAMP_ENV = "STAGING_API_SHARED_STAMP"

T = TypeVar("T")
log = logging.getLogger(__name__)


class SharedStamp:
    """Eight bytes in a memory-mapped file shared by the processes of one server. A process
    that changed the registry writes fresh random bytes; the others see them differ on their
    next read. Any difference means "changed", so no locking is needed."""

    def __init__(self, path: str | Path) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            self._map = mmap.mmap(fd, STAMP_BYTES)
        finally:
            os.close(fd)

    @staticmethod
    def create() -> Path:
        """A new stamp file (mode 0600, in the temp directory); the caller removes it. Its
        bytes live in the page cache that every mapping shares; nothing waits for a disk."""
        fd, path = tempfile.mkstemp(prefix="staging-ops-api-", suffix=".stamp")
        try:
            os.write(fd, bytes(STAMP_BYTES))
        finally:
            os.close(fd)
        return Path(path)

    def read(self) -> bytes:
        return self._map[:STAMP_BYTES]

    def bump(self) -> None:
        self._map[:STAMP_BYTES] = os.urandom(STAMP_BYTES)

    def close(self) -> None:
        self._map.close()


class ReadCache(Generic[T]):
    """One value (what `load` returns), kept until the registry changes; thread-safe."""

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        shared: SharedStamp | None = None,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self._shared = shared
        self._stamp_seen = shared.read() if shared else b""
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._listener: Any = None
        self._retry_at = 0.0
        self._closed = False
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
            if self._closed:
                return load()
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
            if self._closed:
                return value
            self._look_for_changes()
            if generation == self._generation and self._listener is not None:
                self._value, self._value_generation, self._loaded_at = value, generation, loaded_at
        return value

    def invalidate(self) -> None:
        """Forget the value, here and in the server's other processes (call after a commit)."""
        with self._lock:
            self._generation += 1
            if self._shared is not None and not self._closed:
                self._shared.bump()

    def close(self) -> None:
        """Stop listening for good; later reads all go to the database."""
        with self._lock:
            self._closed = True
            self._drop_listener()
            if self._shared is not None:
                self._shared.close()
                self._shared = None

    def _look_for_changes(self) -> None:
        if self._shared is not None:
            stamp = self._shared.read()
            if stamp != self._stamp_seen:
                self._stamp_seen = stamp
                self._generation += 1
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
        # Connecting holds the lock: other readers wait for it rather than all connecting at
        # once. With the database down that wait is the connect timeout, once per
        # RETRY_SECONDS, and their own queries would fail as slowly.
        now = self._clock()
        if now < self._retry_at:
            return
        conn = None
        try:
            conn = self._connect()
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        except (psycopg2.Error, StagingError) as exc:
            log.warning("cannot listen for registry changes (%s); reading without a cache", exc)
            if conn is not None:
                with contextlib.suppress(psycopg2.Error):
                    conn.close()
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
