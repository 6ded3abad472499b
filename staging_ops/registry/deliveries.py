"""Webhook deliveries already applied (marts.staging_webhook_deliveries, migration 0003).

`applying(source, keys)` holds a delivery's keys in an open transaction while the caller
applies it: a duplicate that arrives meanwhile waits on the primary key (its `INSERT ... ON
CONFLICT DO NOTHING` cannot decide until ours commits or rolls back) and then finds the keys
taken, so two identical deliveries at once apply once. The keys commit only after the
release did; a failed release rolls them back, so the sender's retry is applied.

The release runs in the registry's own transaction, not this one (the SlotRegistry Protocol
has no way to share one). What that leaves: if this process dies between the release's commit
and the keys' commit, a redelivery runs the release again — which is conditional on the same
task still holding the slot, so it finds the slot free and does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql

from staging_ops.registry.dsn import connect
from staging_ops.registry.dsn import database_failure as _failure

DELIVERIES = sql.Identifier("marts", "staging_webhook_deliveries")
KEEP_DAYS = 30


@dataclass
class Delivery:
    """A delivery being applied: `fresh` is False for one applied before (do nothing);
    `outcome` is stored with its keys when the transaction commits."""

    fresh: bool
    outcome: str = ""


@contextlib.contextmanager
def applying(dsn: str, source: str, keys: Sequence[str]) -> Iterator[Delivery]:
    """Take the delivery's keys for the block (see the module's docstring); commit them, with
    the block's outcome, when it ends without an exception."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            taken = 0
            for key in keys:
                cur.execute(
                    sql.SQL(
                        "INSERT INTO {} (source, delivery_id) VALUES (%s, %s)"
                        " ON CONFLICT DO NOTHING"
                    ).format(DELIVERIES),
                    (source, key[:200]),
                )
                taken += cur.rowcount
            delivery = Delivery(fresh=bool(keys) and taken == len(keys))
            if not delivery.fresh:
                conn.rollback()  # seen before (or partly: a replay under a new header)
                yield delivery
                return
            yield delivery
            cur.execute(
                sql.SQL(
                    "UPDATE {} SET outcome = %s WHERE source = %s AND delivery_id = ANY(%s)"
                ).format(DELIVERIES),
                (delivery.outcome[:1000], source, [key[:200] for key in keys]),
            )
        conn.commit()
    except psycopg2.Error as exc:
        raise _failure(dsn, exc) from None
    finally:
        conn.close()  # without a commit (an exception in the block), the keys roll back


def prune(dsn: str, days: int = KEEP_DAYS) -> int:
    """Forget deliveries older than `days` (no sender redelivers that late); how many."""
    conn = connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "DELETE FROM {} WHERE received_at < now() - make_interval(days => %s)"
                ).format(DELIVERIES),
                (days,),
            )
            return cur.rowcount
    except psycopg2.Error as exc:
        raise _failure(dsn, exc) from None
    finally:
        conn.close()
