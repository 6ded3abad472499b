"""The Campaign UI's database connection, from ``DATABASE_URL`` (a ``postgresql://`` URL)."""

from __future__ import annotations

import os

import psycopg2
import psycopg2.extensions


class ConfigError(RuntimeError):
    """A required environment variable is missing."""


def database_url() -> str:
    """``DATABASE_URL``, or ConfigError naming it (never its value: it holds a password)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        raise ConfigError("DATABASE_URL is not set")
    return url


def connect(timeout_seconds: int = 5) -> psycopg2.extensions.connection:
    """A new connection to the app's database; fails within ``timeout_seconds`` if unreachable."""
    return psycopg2.connect(database_url(), connect_timeout=timeout_seconds)
