"""`invoke api.*`: the Staging API server (and the dashboard it serves) and its admin tokens."""

from __future__ import annotations

from invoke import task

from staging_ops.cli.common import operator_errors


@task(
    name="serve",
    help={
        "host": "address to listen on (default 127.0.0.1; put TLS in front of anything else)",
        "port": "port to listen on (default 8700)",
        "workers": "worker processes (default: one per core, at least 2)",
    },
)
@operator_errors
def api_serve(c, host="127.0.0.1", port="8700", workers="0"):
    """Run the Staging API and Dashboard under granian (STAGING_REGISTRY_DSN, _API_JWT_SECRET)."""
    from staging_ops import parsing
    from staging_ops.web.server import MAX_WORKERS, ServeOptions, serve_staging

    options = ServeOptions(
        host,
        parsing.integer(port, "port", low=1, high=65535),
        parsing.integer(workers, "workers", low=0, high=MAX_WORKERS),
    )
    print(f"Staging API on http://{host}:{port}/api/staging (/api/staging/openapi.json)")
    serve_staging(options)


@task(
    name="token",
    help={
        "subject": "who the token is for (default: git config user.email, then $USER)",
        "ttl": "how long it is valid: 30m, 12h, 7d (default 12h)",
    },
)
@operator_errors
def api_token(c, subject="", ttl="12h"):
    """Print an admin JWT for STAGING_API_TOKEN (signed with STAGING_API_JWT_SECRET)."""
    from staging_ops import parsing
    from staging_ops.slots.model import MAX_TTL
    from staging_ops.slots.owner import default_owner
    from staging_ops.web import auth

    seconds = int(parsing.duration(ttl, "ttl", high=MAX_TTL).total_seconds())

    print(auth.mint_token(auth.secret_from_env(), subject or default_owner(), seconds))
