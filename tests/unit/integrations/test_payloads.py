"""The request bodies and GraphQL documents (pure), judged by the services' own contracts:
GitHub's OpenAPI request schemas and Linear's schema, as the stand-ins judge them."""

from __future__ import annotations

import pytest
from graphql import parse, validate
from graphql.execution.values import get_variable_values

from devtools.standins.github import GitHubStandIn
from devtools.standins.linear import LinearStandIn
from staging_ops.integrations import config, github, linear
from staging_ops.integrations.events import FAILED, RELEASED, STARTED, SUCCEEDED, Event

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def event(kind: str, **extra) -> Event:
    values = {
        "kind": kind,
        "slot_id": 4,
        "environment": "staging-4",
        "url": "https://staging-4.justapply.net",
        "commit": COMMIT,
        "branch": "alice/ja-123-search",
        "task": "JA-123",
        "repository": "justapply/job-search",
        "log_url": "https://justapply.net/staging#staging-4",
        "by": "alice@example.com",
        **extra,
    }
    return Event(**values)


@pytest.fixture(scope="module")
def gh() -> GitHubStandIn:
    return GitHubStandIn("t")  # never started: its validator only


def request_schema(stand_in: GitHubStandIn, suffix: str) -> dict:
    path = next(p for p in stand_in.contract["paths"] if p.endswith(suffix))
    operation = stand_in.contract["paths"][path]["post"]
    return operation["requestBody"]["content"]["application/json"]["schema"]


def test_deployment_body_fits_githubs_schema_and_names_the_slot(gh):
    body = github.deployment_body(event(STARTED))
    assert gh._complaints(request_schema(gh, "/deployments"), body) == []
    assert body["ref"] == COMMIT
    assert body["environment"] == "staging-4"
    assert body["transient_environment"] is True
    assert body["production_environment"] is False
    assert body["auto_merge"] is False
    assert body["required_contexts"] == []


@pytest.mark.parametrize(
    ("kind", "state"),
    [(STARTED, "in_progress"), (SUCCEEDED, "success"), (FAILED, "failure"), (RELEASED, "inactive")],
)
def test_status_body_fits_githubs_schema(gh, kind, state):
    body = github.status_body(event(kind, step="migrate"), github.STATE[kind])
    assert gh._complaints(request_schema(gh, "/statuses"), body) == []
    assert body["state"] == state
    assert body["environment_url"] == "https://staging-4.justapply.net"
    assert body["log_url"] == "https://justapply.net/staging#staging-4"
    assert len(body["description"]) <= github.DESCRIPTION_MAX


def test_a_long_description_is_cut_to_githubs_limit():
    long = event(FAILED, branch="b" * 200, step="candidate verify")
    assert len(github.status_body(long, "failure")["description"]) == github.DESCRIPTION_MAX


def test_a_body_githubs_schema_refuses_is_refused(gh):
    # The validator is not lenient: a state GitHub does not know fails it.
    assert gh._complaints(request_schema(gh, "/statuses"), {"state": "done"})


def test_without_a_dashboard_url_no_log_url_is_sent():
    body = github.status_body(event(SUCCEEDED, log_url=None), "success")
    assert "log_url" not in body


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        (STARTED, []),
        (SUCCEEDED, ["attachmentLinkURL"]),
        (FAILED, ["commentCreate"]),
        (RELEASED, ["attachmentLinkURL", "commentCreate"]),
    ],
)
def test_linear_requests_validate_against_linears_schema(kind, fields):
    schema = LinearStandIn("k").schema
    sent = linear.requests_for(event(kind, step="migrate", serving="20260101-abc"))
    names = []
    for document, variables in sent:
        parsed = parse(document)
        assert validate(schema, parsed) == []
        operation = parsed.definitions[0]
        coerced = get_variable_values(schema, operation.variable_definitions, variables)
        assert not isinstance(coerced, list), coerced
        names.append(operation.selection_set.selections[0].name.value)
    assert names == fields


def test_the_attachment_is_keyed_by_the_slot_url_on_every_event():
    urls = {
        variables["url"]
        for kind in (SUCCEEDED, RELEASED)
        for document, variables in linear.requests_for(event(kind))
        if document == linear.ATTACH
    }
    assert urls == {"https://staging-4.justapply.net"}


def test_comments_say_what_failed_and_what_serves():
    [(_, variables)] = linear.requests_for(event(FAILED, step="migrate", serving="20260101-abc"))
    body = variables["input"]["body"]
    assert "`migrate`" in body and "20260101-abc" in body and "alice/ja-123-search" in body
    [_, (_, released)] = linear.requests_for(event(RELEASED))
    assert "released by alice@example.com" in released["input"]["body"]


def test_no_task_means_nothing_for_linear():
    assert linear.requests_for(event(SUCCEEDED, task=None)) == []


def test_settings_come_from_the_environment_and_never_show_a_token():
    settings = config.from_env(
        {"STAGING_GITHUB_TOKEN": "ghp_secret", "STAGING_LINEAR_API_URL": "http://x/graphql"}
    )
    assert settings.targets == ["github"]
    assert settings.github.url == config.GITHUB_API
    assert "ghp_secret" not in repr(settings)
    assert config.from_env({}).targets == []


def test_an_event_survives_its_json():
    original = event(FAILED, step="switch", rollback=True)
    assert Event.from_json(original.to_json()) == original
    with pytest.raises(ValueError, match="unknown integration event"):
        event("exploded")
