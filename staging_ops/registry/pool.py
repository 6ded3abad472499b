"""The registry's connections to PostgreSQL: a thread-safe pool (so a web server's threads can
share it), one short transaction or one autocommit read at a time, and the read cache that a
committed write invalidates (changes.py). Every database error leaves as a one-line
StagingError (dsn.py says which)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg2
import psycopg2.pool

from staging_ops.registry.changes import MAX_AGE_SECONDS, ReadCache, SharedStamp
from staging_ops.registry.dsn import (
    connect,
    connect_kwargs,
    database_failure,
    describe_dsn,
    unreachable,
)
from staging_ops.registry.schema import DictRowCursor, set_context

T = TypeVar("T")


class Connections:
    """Up to `max_connections` pooled connections to `dsn`. With `cache_reads`, `cached()`
    answers from memory until the table changes (`shared_stamp`: the file a server's
    processes share so that each sees the others' writes at once)."""

    def __init__(
        self,
        dsn: str,
        *,
        max_connections: int = 1,
        cache_reads: bool = False,
        cache_max_age: float = MAX_AGE_SECONDS,
        shared_stamp: str | os.PathLike[str] | None = None,
    ) -> None:
        self.dsn = dsn
        self.target = describe_dsn(dsn)
        self.cache: ReadCache[Any] | None = None
        if cache_reads:
            shared = SharedStamp(shared_stamp) if shared_stamp else None
            self.cache = ReadCache(lambda: connect(dsn), shared=shared, max_age=cache_max_age)
        try:
            self._pool = psycopg2.pool.ThreadedConnectionPool(
                1, max_connections, **connect_kwargs(dsn)
            )
        except psycopg2.OperationalError as exc:
            raise unreachable(dsn, exc) from None
        # ThreadedConnectionPool raises instead of waiting when it is exhausted; the semaphore
        # makes extra threads wait for a connection instead.
        self._free_connections = threading.BoundedSemaphore(max_connections)

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
        if not self._pool.closed:
            self._pool.closeall()

    def cached(self, load: Callable[[], T]) -> T:
        """`load()`, or with `cache_reads` its last answer while the table is unchanged."""
        if self.cache is not None:
            return self.cache.get(load)
        return load()

    @contextmanager
    def connection(self, autocommit: bool) -> Iterator[Any]:
        """A pooled connection; database errors leave as one-line StagingErrors."""
        with self._free_connections:
            try:
                conn = self._pool.getconn()
            except psycopg2.OperationalError as exc:
                raise unreachable(self.dsn, exc) from None
            broken = False
            try:
                conn.autocommit = autocommit
                yield conn
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                broken = True
                raise unreachable(self.dsn, exc) from None
            except psycopg2.Error as exc:
                raise database_failure(self.dsn, exc) from None
            finally:
                self._pool.putconn(conn, close=broken or conn.closed != 0)

    @contextmanager
    def transaction(
        self, via: str, actor: str = "", action: str = "", detail: str = ""
    ) -> Iterator[Any]:
        """One transaction: commit on success, rollback on error. The event trigger learns
        who acts, how and why from the settings made first."""
        try:
            with (
                self.connection(autocommit=False) as conn,
                conn,
                conn.cursor(cursor_factory=DictRowCursor) as cur,
            ):
                if actor or action:
                    set_context(cur, actor=actor, via=via, action=action, detail=detail)
                yield cur
        finally:
            # After the commit: this process's next read must see its own write, without
            # waiting for the notification to come back.
            if self.cache is not None:
                self.cache.invalidate()

    @contextmanager
    def read(self) -> Iterator[Any]:
        """A single read statement: autocommit, so no BEGIN/COMMIT round trips around it."""
        with (
            self.connection(autocommit=True) as conn,
            conn.cursor(cursor_factory=DictRowCursor) as cur,
        ):
            yield cur
