"""Reaching the registry database: connection arguments, one connection, and database errors
as one operator line that names `host:port/dbname` and never the password."""

from __future__ import annotations

import os
import re
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions

from staging_ops.errors import BadInput, StagingError

CONNECT_TIMEOUT = 5


def redact(text: str, dsn: str) -> str:
    """`text` with the DSN's password removed, wherever and however it appears."""
    password = _dsn_params(dsn).get("password") or os.environ.get("PGPASSWORD")
    if password:
        text = text.replace(password, "***")
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.IGNORECASE)


def _dsn_params(dsn: str) -> dict[str, str]:
    try:
        return psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.Error:
        return {}


def describe_dsn(dsn: str) -> str:
    """`host:port/dbname` of a DSN (libpq defaults and PG* variables applied), no secrets."""
    params = _dsn_params(dsn)
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or ""
    return f"{host}:{port}/{dbname}" if dbname else f"{host}:{port}"


def connect_kwargs(dsn: str) -> dict[str, Any]:
    """psycopg2.connect arguments: the DSN plus our defaults unless the DSN sets them."""
    try:
        params = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.Error:
        # The parser's message may quote the DSN, password included: never show it.
        raise BadInput("STAGING_REGISTRY_DSN is not a valid PostgreSQL DSN or URL") from None
    kwargs: dict[str, Any] = {"dsn": dsn}
    if "connect_timeout" not in params:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT
    if "application_name" not in params:
        kwargs["application_name"] = "staging-ops"
    return kwargs


def unreachable(dsn: str, exc: BaseException) -> StagingError:
    """A failed connection as one line: which database, and the first line of why."""
    reason = redact((str(exc).strip().splitlines() or ["no answer"])[0], dsn)
    return StagingError(f"cannot reach registry database {describe_dsn(dsn)}: {reason}")


def connect(dsn: str) -> psycopg2.extensions.connection:
    """One connection, or StagingError naming host:port (never the password)."""
    try:
        return psycopg2.connect(**connect_kwargs(dsn))
    except psycopg2.OperationalError as exc:
        raise unreachable(dsn, exc) from None


def database_failure(dsn: str, exc: psycopg2.Error) -> StagingError:
    """A database error as one operator line (a missing schema says which task creates it)."""
    if isinstance(exc, psycopg2.errors.UndefinedTable | psycopg2.errors.InvalidSchemaName):
        return StagingError(
            f"registry schema missing in {describe_dsn(dsn)}: run `invoke registry.migrate`"
        )
    if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
        return unreachable(dsn, exc)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return StagingError(f"registry database {describe_dsn(dsn)}: {redact(first, dsn)}")
