"""Per-slot PostgreSQL role and database on the droplet, idempotent, over an SSH tunnel.

Each slot's role owns its database; CONNECT is revoked from PUBLIC so one slot's role cannot
open another slot's database. Identifiers go through psycopg2.sql, values are parameters.

The role's password is part of the desired state: every run compares the role's stored SCRAM
verifier with the env file's password, so a role left with another password (an env file
uploaded by a run whose database step then failed) is set again. Only SCRAM verifiers we
compute ever reach the server, never a plain password: a failed statement is logged there.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg2
from psycopg2 import errors as pg_errors
from psycopg2 import sql

from staging_ops.errors import StagingError
from staging_ops.inventory import Host, Slot
from staging_ops.provision.scram import scram_verifier, verifier_matches
from staging_ops.remote.scripts import home, script_command

ADMIN_PASSWORD_ENV = "STAGING_PG_ADMIN_PASSWORD"  # noqa: S105 - a variable name
ADMIN_SECRET_DIR = ".staging-ops"  # noqa: S105 - a directory name
# libpq's words when the server wants a password we did not send, or refuses the one we sent.
_PASSWORD_NEEDED = ("no password supplied", "password authentication failed")
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
    # role -> pg_authid.rolpassword (None: no password); only roles that exist
    verifiers: dict[str, str | None] = field(default_factory=dict)


class AdminPasswordNeeded(StagingError):
    """The server asks the admin for a password we do not have (or refuses the one we have)."""


def admin_secret_path(host: Host) -> str:
    """Where the droplet keeps the admin password provision-all set up (root only, 0600)."""
    return f"{host.base_dir}/{ADMIN_SECRET_DIR}/postgres-admin"


def admin_password(secret_file_content: str | None) -> str | None:
    """The admin password to use: the operator's (STAGING_PG_ADMIN_PASSWORD) wins, else the
    one the droplet keeps, else none (a server that trusts the admin on loopback)."""
    kept = (secret_file_content or "").strip()
    return os.environ.get(ADMIN_PASSWORD_ENV) or kept or None


def bootstrap_admin_password(remote: Any, host: Host) -> str:
    """Give the admin role a password through peer authentication (psql as the `postgres` OS
    user on the droplet: a fresh Debian PostgreSQL allows nothing else) and keep it only on
    the droplet. The file is written before the role learns the password, so a password in
    force is never one that is not kept; only its SCRAM verifier leaves this machine as a
    psql variable (an argument, never pasted into the SQL)."""
    from staging_ops import remote as remote_mod

    password = secrets.token_urlsafe(32)
    path = admin_secret_path(host)
    remote.run(secret_mkdir_command(path.rsplit("/", 1)[0]))
    remote_mod.apply_files(remote, [remote_mod.Write(path, password + "\n", 0o600)], [])
    script = admin_password_command(
        host.postgres_port, host.postgres_admin_user, scram_verifier(password)
    )
    code, out, err = remote.run(script, check=False)
    if code != 0:
        detail = (err or out).strip().splitlines()[-1:] or [f"exit {code}"]
        raise StagingError(
            f"{host.name}: setting up the PostgreSQL admin password through peer "
            f"authentication failed: {detail[0]}"
        )
    return password


def read_admin_secret(remote: Any, host: Host) -> str | None:
    """The admin password the droplet keeps, read in one command (for tasks that gather no
    facts, e.g. release --reset-db); None when there is none."""
    code, out, _ = remote.run(secret_read_command(admin_secret_path(host)), check=False)
    return (out.strip() or None) if code == 0 else None


@home("provision-admin-secret.sh", "mkdir")
def secret_mkdir_command(dir: str) -> str:
    """DIR for the kept admin password, root only."""
    return script_command("provision-admin-secret.sh", "mkdir", dir)


@home("provision-admin-secret.sh", "read")
def secret_read_command(file: str) -> str:
    """FILE's content: the kept admin password (nothing: none)."""
    return script_command("provision-admin-secret.sh", "read", file)


@home("provision-pg-admin-password.sh")
def admin_password_command(port: int, admin: str, verifier: str) -> str:
    """The PostgreSQL role ADMIN's password set to the SCRAM VERIFIER, through peer auth."""
    return script_command("provision-pg-admin-password.sh", port, admin, verifier)


def admin_connect(host: Host, port: int, dbname: str = "postgres", password: str | None = None):
    """Connect as the droplet's PostgreSQL admin through the local end of an SSH tunnel, with
    `password` (None: STAGING_PG_ADMIN_PASSWORD, if set)."""
    where = f"{host.name} postgres ({host.postgres_host}:{host.postgres_port} via ssh)"
    # Fabric's tunnel listener starts in a thread: give it a moment to bind.
    deadline = time.monotonic() + 3
    while True:
        try:
            conn = psycopg2.connect(
                host="127.0.0.1",
                port=port,
                user=host.postgres_admin_user,
                password=password or os.environ.get(ADMIN_PASSWORD_ENV) or None,
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
            if any(s in text for s in _PASSWORD_NEEDED):
                raise AdminPasswordNeeded(f"cannot log in to {where}: {reason}") from None
            raise StagingError(f"cannot reach {where}: {reason}") from None
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    return conn


def _read_verifiers(cur, names: list[str]) -> dict[str, str | None]:
    """Each existing role's stored verifier; pg_authid is readable by superusers only."""
    try:
        cur.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s)", (names,))
    except pg_errors.InsufficientPrivilege:
        raise StagingError(
            "checking the slot roles' passwords needs a superuser: permission denied for pg_authid"
        ) from None
    return {r[0]: r[1] for r in cur.fetchall()}


def read_state(conn, slots: list[Slot]) -> DbState:
    names = [s.database for s in slots]
    with conn.cursor() as cur:
        verifiers = _read_verifiers(cur, names)
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
        roles=frozenset(verifiers),
        owners={r[0]: r[1] for r in rows},
        public_connect=frozenset(r[0] for r in rows if r[2]),
        verifiers=verifiers,
    )


def _password_stale(
    state: DbState, slot: Slot, new_passwords: set[int], passwords: Mapping[int, str] | None
) -> bool:
    if slot.id in new_passwords:
        return True  # the env file gets a fresh password: the role must learn it
    password = (passwords or {}).get(slot.id)
    # Checked on every run, not only for fresh passwords: an env file can be uploaded by a
    # run whose database step then fails, and later runs read that password back as old.
    return password is not None and not verifier_matches(
        state.verifiers.get(slot.database), password
    )


def plan(
    state: DbState,
    slots: list[Slot],
    new_passwords: set[int],
    passwords: Mapping[int, str] | None = None,
) -> list[DbChange]:
    """What to do so every slot has its role (with the env file's password) and database.

    `passwords` (slot id -> the env file's password) lets the plan check each existing role's
    password; without it only `new_passwords` (fresh ones) are set."""
    changes: list[DbChange] = []
    for slot in slots:
        name = slot.database
        if name not in state.roles:
            changes.append(DbChange(slot.id, "create-role", name))
        elif _password_stale(state, slot, new_passwords, passwords):
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
                    (scram_verifier(passwords[change.slot]),),
                )
            elif change.action == "set-password":
                cur.execute(
                    sql.SQL("ALTER ROLE {} LOGIN PASSWORD %s").format(name),
                    (scram_verifier(passwords[change.slot]),),
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
        password = os.environ.get(ADMIN_PASSWORD_ENV) or read_admin_secret(session, host)
        with remote.tunnel(session, host.postgres_host, host.postgres_port) as port:
            conn = admin_connect(host, port, password=password)
            try:
                recreate_database(conn, slot)
            finally:
                conn.close()
    finally:
        session.close()
    return f"recreated {slot.database} empty"


# --- the databases step of provision-all ------------------------------------------------------


@dataclass(frozen=True)
class DatabaseOutcome:
    """What the step changed (or, with check, would change)."""

    changes: list[DbChange] = field(default_factory=list)
    # The admin password was set up (a fresh PostgreSQL: peer authentication only).
    admin_secret_made: bool = False
    # --check: it would be, and the roles cannot be read without it.
    admin_secret_needed: bool = False


def converge(
    session: Any,
    host: Host,
    slots: list[Slot],
    fresh: set[int],
    passwords: dict[int, str],
    *,
    check: bool,
    server_missing: bool,
    admin_password: str | None,
) -> DatabaseOutcome:
    """Every slot's role and database as `plan` wants them, through a tunnel over `session`.
    `server_missing` (--check on a host whose PostgreSQL is not installed yet): nothing to
    ask, everything would be created."""
    if not slots:
        return DatabaseOutcome()
    if check and server_missing:
        state = DbState(frozenset(), {}, frozenset())
        return DatabaseOutcome(plan(state, slots, fresh, passwords))
    from staging_ops import remote

    with remote.tunnel(session, host.postgres_host, host.postgres_port) as port:
        made = False
        try:
            conn = admin_connect(host, port, password=admin_password)
        except AdminPasswordNeeded:
            if os.environ.get(ADMIN_PASSWORD_ENV):
                raise  # the operator's password is refused: theirs to fix, not ours to replace
            if check:
                return DatabaseOutcome(admin_secret_needed=True)
            admin_password = bootstrap_admin_password(session, host)
            made = True
            conn = admin_connect(host, port, password=admin_password)
        try:
            changes = plan(read_state(conn, slots), slots, fresh, passwords)
            if changes and not check:
                _apply_by_slot(conn, host, port, admin_password, changes, passwords)
        finally:
            conn.close()
    return DatabaseOutcome(changes, admin_secret_made=made)


def _apply_by_slot(
    conn, host: Host, port: int, password: str | None, changes: list[DbChange], passwords
) -> None:
    by_slot: dict[int, list[DbChange]] = {}
    for change in changes:
        by_slot.setdefault(change.slot, []).append(change)
    groups = list(by_slot.values())
    apply(conn, groups.pop(0), passwords)
    if not groups:
        return

    def apply_alone(group: list[DbChange]) -> None:
        own = admin_connect(host, port, password=password)
        try:
            apply(own, group, passwords)
        finally:
            own.close()

    # CREATE DATABASE copies a template (~0.2 s each): a few at once.
    with ThreadPoolExecutor(max_workers=min(4, len(groups))) as pool:
        list(pool.map(apply_alone, groups))
