"""Per-slot PostgreSQL role and database on the droplet, idempotent, over an SSH tunnel.

Each slot's role owns its database; CONNECT is revoked from PUBLIC so one slot's role cannot
open another slot's database. Identifiers go through psycopg2.sql, values are parameters.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import psycopg2
from psycopg2 import sql

from staging_ops.errors import StagingError
from staging_ops.inventory import Host, Slot

ADMIN_PASSWORD_ENV = "STAGING_PG_ADMIN_PASSWORD"  # noqa: S105 - a variable name
_URL = re.compile(r"^DATABASE_URL=(\S+)$", re.M)


def password_from_env_file(content: str | None) -> str | None:
    """The slot's password, as kept in its env file (the only place it lives)."""
    if not content:
        return None
    match = _URL.search(content)
    if not match:
        return None
    password = urlsplit(match.group(1)).password
    return unquote(password) if password else None


@dataclass(frozen=True)
class DbChange:
    slot: int
    action: str  # create-role, set-password, create-database, set-owner, revoke-public
    target: str


@dataclass(frozen=True)
class DbState:
    roles: frozenset[str]
    owners: dict[str, str]  # database -> owner role
    public_connect: frozenset[str]  # databases PUBLIC may still connect to


def admin_connect(host: Host, port: int, dbname: str = "postgres"):
    """Connect as the droplet's PostgreSQL admin through the local end of an SSH tunnel."""
    where = f"{host.name} postgres ({host.postgres_host}:{host.postgres_port} via ssh)"
    # Fabric's tunnel listener starts in a thread: give it a moment to bind.
    deadline = time.monotonic() + 3
    while True:
        try:
            conn = psycopg2.connect(
                host="127.0.0.1",
                port=port,
                user=host.postgres_admin_user,
                password=os.environ.get(ADMIN_PASSWORD_ENV) or None,
                dbname=dbname,
                connect_timeout=int(host.connect_timeout),
            )
            break
        except psycopg2.OperationalError as exc:
            text = str(exc)
            if "Connection refused" in text and time.monotonic() < deadline:
                time.sleep(0.01)
                continue
            lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
            reason = lines[0] if lines else "unreachable"
            raise StagingError(f"cannot reach {where}: {reason}") from None
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    return conn


def read_state(conn, slots: list[Slot]) -> DbState:
    names = [s.database for s in slots]
    with conn.cursor() as cur:
        cur.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (names,))
        roles = frozenset(r[0] for r in cur.fetchall())
        cur.execute(
            """
            SELECT d.datname, pg_get_userbyid(d.datdba),
                   EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                           WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT')
            FROM pg_database d WHERE d.datname = ANY(%s)
            """,
            (names,),
        )
        rows = cur.fetchall()
    return DbState(
        roles=roles,
        owners={r[0]: r[1] for r in rows},
        public_connect=frozenset(r[0] for r in rows if r[2]),
    )


def plan(state: DbState, slots: list[Slot], new_passwords: set[int]) -> list[DbChange]:
    """What to do so every slot has its role (with the env file's password) and database."""
    changes: list[DbChange] = []
    for slot in slots:
        name = slot.database
        if name not in state.roles:
            changes.append(DbChange(slot.id, "create-role", name))
        elif slot.id in new_passwords:
            # The env file got a fresh password: the role must learn it.
            changes.append(DbChange(slot.id, "set-password", name))
        if name not in state.owners:
            changes.append(DbChange(slot.id, "create-database", name))
            changes.append(DbChange(slot.id, "revoke-public", name))
            continue
        if state.owners[name] != name:
            changes.append(DbChange(slot.id, "set-owner", name))
        if name in state.public_connect:
            changes.append(DbChange(slot.id, "revoke-public", name))
    return changes


def apply(conn, changes: list[DbChange], passwords: dict[int, str]) -> None:
    ident = sql.Identifier
    with conn.cursor() as cur:
        for change in changes:
            name = ident(change.target)
            if change.action == "create-role":
                cur.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(name),
                    (passwords[change.slot],),
                )
            elif change.action == "set-password":
                cur.execute(
                    sql.SQL("ALTER ROLE {} LOGIN PASSWORD %s").format(name),
                    (passwords[change.slot],),
                )
            elif change.action == "create-database":
                cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(name, name))
            elif change.action == "set-owner":
                cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(name, name))
            elif change.action == "revoke-public":
                cur.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(name))
                cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(name, name))


def recreate_database(conn, slot: Slot) -> None:
    """Drop and recreate a slot's database empty (release --reset-db)."""
    name = sql.Identifier(slot.database)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(name, name))
        cur.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(name))
        cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(name, name))


def reset_slot_database(inventory, slot: Slot) -> str:
    """Recreate the slot's database empty, through an SSH tunnel to its droplet."""
    from staging_ops import remote

    host = inventory.host_of(slot)
    session = remote.connect(host)
    try:
        with remote.tunnel(session, host.postgres_host, host.postgres_port) as port:
            conn = admin_connect(host, port)
            try:
                recreate_database(conn, slot)
            finally:
                conn.close()
    finally:
        session.close()
    return f"recreated {slot.database} empty"
