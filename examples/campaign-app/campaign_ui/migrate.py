"""The release phase: ``python -m campaign_ui.migrate``.

1. The Campaign UI's own schema in ``DATABASE_URL``: each migration below runs once, in its
   own transaction, recorded in ``campaign_migrations`` (a second run changes nothing).
2. ``airflow db migrate`` with this same Python (the release's venv), so Airflow's metadata
   database follows the Airflow version the release pins.

Exit 0 when both are done; otherwise one line on stderr and exit 1 (exit 2 when
``DATABASE_URL`` is missing). Airflow's own output is kept out of the way on success (it is
long) and its last line is the reason given on failure.
"""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg2

from campaign_ui.db import ConfigError, connect

# (id, SQL). Append only: an applied migration is never edited.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_campaigns",
        """
        CREATE TABLE campaigns (
            id bigserial PRIMARY KEY,
            name text NOT NULL UNIQUE,
            status text NOT NULL DEFAULT 'draft',
            created_at timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO campaigns (name, status) VALUES ('Welcome series', 'active');
        """,
    ),
)

AIRFLOW_TIMEOUT_SECONDS = 600


def migrate_app_schema() -> list[str]:
    """Apply the migrations not yet recorded; return the ids applied now."""
    applied_now: list[str] = []
    conn = connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS campaign_migrations ("
                " id text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
        for migration_id, sql in MIGRATIONS:
            with conn, conn.cursor() as cur:
                # The lock serialises two releases migrating at once (a deploy and a retry).
                cur.execute("LOCK TABLE campaign_migrations IN EXCLUSIVE MODE")
                cur.execute("SELECT 1 FROM campaign_migrations WHERE id = %s", (migration_id,))
                if cur.fetchone():
                    continue
                cur.execute(sql)
                cur.execute("INSERT INTO campaign_migrations (id) VALUES (%s)", (migration_id,))
                applied_now.append(migration_id)
    finally:
        conn.close()
    return applied_now


def migrate_airflow() -> None:
    """``airflow db migrate`` in this interpreter's environment; RuntimeError with its last line."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            capture_output=True,
            text=True,
            timeout=AIRFLOW_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"airflow db migrate took over {AIRFLOW_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        last = lines[-1].strip() if lines else "no output"
        raise RuntimeError(f"airflow db migrate exited {done.returncode}: {last}")


def main() -> int:
    """Run both steps; print one line saying what was done or why it failed."""
    started = time.monotonic()
    try:
        applied = migrate_app_schema()
        migrate_airflow()
    except ConfigError as err:
        print(f"migrate: {err}", file=sys.stderr)
        return 2
    except psycopg2.Error as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"migrate: campaign schema failed: {reason}", file=sys.stderr)
        return 1
    except RuntimeError as err:
        print(f"migrate: {err}", file=sys.stderr)
        return 1
    print(
        f"migrate: campaign schema {'applied ' + ', '.join(applied) if applied else 'up to date'}"
        f"; airflow db migrate done ({time.monotonic() - started:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
