"""A slot role's password against the real sandbox PostgreSQL: the role's stored SCRAM verifier
is compared with the env file's password on every run (and set again when it differs), and
only verifiers we compute reach the server, so a failed statement never logs a password."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from staging_ops.inventory import Slot
from staging_ops.provision import databases, scram
from staging_ops.provision.databases import DbChange
from tests.conftest import login_as_slot_role

SLOT_ID = 901
# Non-ASCII, with characters SASLprep maps (NBSP -> space, the "fi" ligature -> "fi"):
# libpq prepares a password so before hashing it, and the verifier must agree.
UNICODE_PASSWORD = "pässwörd\u00a0ﬁx-Ω"


def make_slot(database: str) -> Slot:
    return Slot(
        id=SLOT_ID,
        identifier=f"staging-{SLOT_ID}",
        subdomain=f"staging-{SLOT_ID}.justapply.net",
        ui_port=0,
        airflow_port=0,
        database=database,
        role="staging",
        host="h1",
    )


@pytest.fixture
def admin(sandbox) -> Iterator:
    conn = psycopg2.connect(sandbox.admin_dsn)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def slot(admin) -> Iterator[Slot]:
    """A slot whose role and database exist only for this test."""
    made = make_slot(f"pwtest_{uuid.uuid4().hex[:10]}")
    yield made
    name = sql.Identifier(made.database)
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(name))


def plan_for(admin, slot: Slot, password: str, fresh: bool = False) -> list[DbChange]:
    """The plan one provision run makes, given what the slot's env file holds."""
    state = databases.read_state(admin, [slot])
    return databases.plan(state, [slot], {slot.id} if fresh else set(), {slot.id: password})


def converge(admin, slot: Slot, password: str, fresh: bool = False) -> list[DbChange]:
    changes = plan_for(admin, slot, password, fresh)
    databases.apply(admin, changes, {slot.id: password})
    return changes


def actions(changes: list[DbChange]) -> list[str]:
    return [c.action for c in changes]


def stored_verifier(admin, role: str) -> str | None:
    with admin.cursor() as cur:
        cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))
        return cur.fetchone()[0]


def login(sandbox, slot: Slot, password: str) -> str:
    return login_as_slot_role(sandbox, slot.database, password)


def test_role_left_with_another_password_is_set_again_then_stays(sandbox, admin, slot):
    converge(admin, slot, "first-password", fresh=True)
    assert login(sandbox, slot, "first-password") == slot.database
    # A run finds the env file missing, generates a password, uploads the env file, and its
    # database step fails: the role keeps the first password. Later runs read the new one
    # back from the env file as an existing password (not fresh).
    before = stored_verifier(admin, slot.database)
    changes = plan_for(admin, slot, "second-password")
    assert [(c.action, c.target) for c in changes] == [("set-password", slot.database)]
    # Planning is what --check does: it must not touch the role.
    assert stored_verifier(admin, slot.database) == before
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        login(sandbox, slot, "second-password")

    databases.apply(admin, changes, {slot.id: "second-password"})
    assert login(sandbox, slot, "second-password") == slot.database
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        login(sandbox, slot, "first-password")
    assert plan_for(admin, slot, "second-password") == []


@pytest.mark.parametrize("stored", ["none", "md5"])
def test_role_without_password_or_with_md5_one_is_set(sandbox, admin, slot, stored):
    converge(admin, slot, "env-password", fresh=True)
    with admin.cursor() as cur:
        role = sql.Identifier(slot.database)
        if stored == "none":
            cur.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(role))
        else:
            # Even the right password, stored as md5, is not the desired state.
            cur.execute("SET password_encryption = 'md5'")
            cur.execute(sql.SQL("ALTER ROLE {} PASSWORD 'env-password'").format(role))
            cur.execute("RESET password_encryption")
    assert actions(plan_for(admin, slot, "env-password")) == ["set-password"]
    converge(admin, slot, "env-password")
    assert stored_verifier(admin, slot.database).startswith("SCRAM-SHA-256$")
    assert login(sandbox, slot, "env-password") == slot.database
    assert plan_for(admin, slot, "env-password") == []


@pytest.mark.parametrize("password", ["plain-ascii_Pw.1", UNICODE_PASSWORD])
def test_verifier_check_agrees_with_verifiers_the_server_makes(admin, slot, password):
    converge(admin, slot, "unrelated", fresh=True)
    with admin.cursor() as cur:
        cur.execute("SET password_encryption = 'scram-sha-256'")
        cur.execute(
            sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(slot.database)),
            (password,),
        )
    server_made = stored_verifier(admin, slot.database)
    assert scram.verifier_matches(server_made, password)
    assert not scram.verifier_matches(server_made, password + "x")
    assert plan_for(admin, slot, password) == []


@pytest.mark.parametrize("password", ["plain-ascii_Pw.1", UNICODE_PASSWORD])
def test_role_gets_a_verifier_we_computed_and_logs_in(sandbox, admin, slot, password):
    # The server would hash a plain password as md5 in this session; a verifier it stores
    # as it is, so SCRAM here shows the plain password was never sent.
    with admin.cursor() as cur:
        cur.execute("SET password_encryption = 'md5'")
    assert actions(converge(admin, slot, password, fresh=True))[0] == "create-role"
    verifier = stored_verifier(admin, slot.database)
    assert verifier.startswith(f"SCRAM-SHA-256${scram.SCRAM_ITERATIONS}:")
    assert scram.verifier_matches(verifier, password)
    assert login(sandbox, slot, password) == slot.database
    databases.apply(admin, [DbChange(slot.id, "set-password", slot.database)], {slot.id: password})
    assert stored_verifier(admin, slot.database) != verifier  # a fresh salt each time
    assert login(sandbox, slot, password) == slot.database


def log_after(log: Path, offset: int, *needles: str) -> str:
    """The server log written after `offset`, once it shows every needle (or 5 s passed)."""
    deadline = time.monotonic() + 5
    while True:
        with log.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
        if all(n in text for n in needles) or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def test_failed_password_statements_do_not_log_the_password(sandbox, admin, slot):
    password = f"leak-check-{uuid.uuid4().hex}"
    converge(admin, slot, password, fresh=True)
    missing = f"pwtest_missing_{uuid.uuid4().hex[:8]}"
    log = Path(sandbox.dir) / "pg" / "postgres.log"
    offset = log.stat().st_size

    # Both fail on the server, which logs each failed statement (log_min_error_statement).
    with pytest.raises(psycopg2.errors.DuplicateObject):
        databases.apply(
            admin, [DbChange(slot.id, "create-role", slot.database)], {slot.id: password}
        )
    with pytest.raises(psycopg2.errors.UndefinedObject):
        databases.apply(admin, [DbChange(slot.id, "set-password", missing)], {slot.id: password})

    text = log_after(log, offset, f'CREATE ROLE "{slot.database}"', f'ALTER ROLE "{missing}"')
    assert f'CREATE ROLE "{slot.database}"' in text, text  # the statements were logged...
    assert f'ALTER ROLE "{missing}"' in text, text
    assert password not in text  # ...without the password
    assert "SCRAM-SHA-256$" in text
