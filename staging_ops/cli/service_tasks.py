"""The registry's schema, the Staging API server and its tokens, the webhook check."""

from __future__ import annotations

from invoke import Exit, task

from staging_ops.cli.common import load, operator_errors
from staging_ops.errors import BadInput


@task(name="migrate")
@operator_errors
def registry_migrate(c):
    """Create or upgrade marts.staging_slots (needs STAGING_REGISTRY_DSN) and register slots."""
    from staging_ops import registry
    from staging_ops.registry.from_env import require_dsn

    report = registry.migrate_report(require_dsn(), load(c))
    print(f"migrations applied: {', '.join(report.applied) or 'none'}")
    print(f"slots added: {len(report.slots_added)}, updated: {len(report.slots_updated)}")
    print(f"changes: {report.changes}")


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
    from staging_ops.claims.model import MAX_TTL
    from staging_ops.claims.owner import default_owner
    from staging_ops.web import auth

    seconds = int(parsing.duration(ttl, "ttl", high=MAX_TTL).total_seconds())

    print(auth.mint_token(auth.secret_from_env(), subject or default_owner(), seconds))


@task(
    name="test",
    help={
        "github": "send a GitHub event (pull_request merged, by default)",
        "linear": "send a Linear Issue update (moved to a completed state, by default)",
        "url": "the API server (default: STAGING_API_URL, the sandbox's, or 127.0.0.1:8700)",
        "branch": "GitHub: the PR's head branch (or the deleted branch)",
        "task": "Linear: the issue's key, e.g. JA-123",
        "event": "GitHub: pull_request (default), delete or ping",
        "unmerged": "GitHub: the PR was closed without merging (frees nothing)",
        "state": "Linear: completed (default) or canceled",
        "repository": "GitHub: owner/name (default: the inventory's github_repository)",
    },
)
@operator_errors
def webhooks_test(
    c,
    github=False,
    linear=False,
    url="",
    branch="",
    task="",
    event="pull_request",
    unmerged=False,
    state="completed",
    repository="",
):
    """Send a correctly signed sample webhook event to a running Staging API."""
    from staging_ops.web.webhooks import sample

    if github == linear:
        raise BadInput("choose one of --github or --linear")
    source = "github" if github else "linear"
    inventory_repository = None
    if github and not repository:
        inventory_repository = load(c).app.github_repository
    code, answer = sample.test_event(
        source=source,
        url=url or None,
        branch=branch,
        task=task,
        event=event,
        unmerged=unmerged,
        state=state,
        repository=repository,
        inventory_repository=inventory_repository,
    )
    print(f"{code}: {answer.get('message', '')}")
    if code >= 400:
        raise Exit(code=1)
