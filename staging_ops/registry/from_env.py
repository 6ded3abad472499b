"""Which registry the environment names: PostgreSQL (STAGING_REGISTRY_DSN) or the Staging API
(STAGING_API_URL + STAGING_API_TOKEN). Both implement slots.model.SlotRegistry, so claim,
deploy and status never know which one they were given."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

from staging_ops.errors import BadInput
from staging_ops.slots.model import SlotRegistry

ENV_DSN = "STAGING_REGISTRY_DSN"
ENV_API_URL = "STAGING_API_URL"
ENV_API_TOKEN = "STAGING_API_TOKEN"  # noqa: S105 - the variable's name, not a secret


def open_registry(env: Mapping[str, str] | None = None) -> SlotRegistry:
    """The registry the environment names: STAGING_REGISTRY_DSN (PostgreSQL) or
    STAGING_API_URL + STAGING_API_TOKEN (the Staging API). BadInput if neither or both."""
    env = os.environ if env is None else env
    dsn, url, token = env.get(ENV_DSN), env.get(ENV_API_URL), env.get(ENV_API_TOKEN)
    if dsn and url:
        raise BadInput(f"both {ENV_DSN} and {ENV_API_URL} are set: unset one of them")
    if dsn:
        # Imported when chosen, so that a PostgreSQL operator never loads requests (the API
        # client's). psycopg2 is loaded either way: staging_ops.registry exports migrate.
        from staging_ops.registry.postgres import PostgresRegistry

        return PostgresRegistry(dsn)
    if url:
        if not token:
            raise BadInput(f"{ENV_API_URL} is set but {ENV_API_TOKEN} is not (an admin JWT)")
        from staging_ops.registry.api_client import ApiRegistry

        return ApiRegistry(url, token)
    raise BadInput(
        f"no slot registry configured: set {ENV_DSN} (PostgreSQL) or "
        f"{ENV_API_URL} and {ENV_API_TOKEN} (Staging API)"
    )


@contextlib.contextmanager
def registry_session(env: Mapping[str, str] | None = None) -> Iterator[SlotRegistry]:
    """open_registry() as a context manager that always closes it."""
    registry = open_registry(env)
    try:
        yield registry
    finally:
        registry.close()


def require_dsn(env: Mapping[str, str] | None = None) -> str:
    """The DSN, for work only the database can do (migrations, serving the API)."""
    dsn = (os.environ if env is None else env).get(ENV_DSN)
    if not dsn:
        raise BadInput(f"{ENV_DSN} is required here (direct database access)")
    return dsn
