"""`invoke webhooks.*`: a correctly signed sample event sent to a running Staging API."""

from __future__ import annotations

from invoke import Exit, task

from staging_ops.cli.common import load, operator_errors
from staging_ops.errors import BadInput


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
