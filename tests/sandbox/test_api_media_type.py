"""A JSON body must be sent as application/json: every route that takes one (the API's claim,
deploy, failed-deploy and release, the server-side deploy and rollback, both webhooks)
answers 415 to a body sent as text/plain, form data, with no Content-Type or as a look-alike
type (`application/json-patch`, `application/jsonx`), in one JSON error, and writes nothing.
Parameters (`; charset=utf-8`) are fine, and a route sent no body needs no Content-Type. The
real app on a real registry, over HTTP; the webhooks signed as their senders sign."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import psycopg2
import pytest
import requests
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg2 import sql

from staging_ops.registry import PostgresRegistry
from staging_ops.web.auth import mint_token
from tests.conftest import admin_execute
from tests.sandbox.api_client import SECRET, running_api
from tests.sandbox.webhook_server import GITHUB_SECRET, LINEAR_SECRET, WEBHOOK_ENV
from tests.webhook_fixtures import github_headers, linear_done, linear_headers, merged_pr

COMMIT = "0123456789abcdef0123456789abcdef01234567"
# Each route's slot: a request that got through would change it (claim 3; release 4, which
# JA-44 holds; a failed deploy into 5's history; the webhooks free 6 and 7).
BRANCH = "ja-66-search"


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    body: bytes
    headers: dict[str, str]  # besides Content-Type: the credential


def _routes(token: str) -> list[Route]:
    auth = {"Authorization": f"Bearer {token}"}
    github = json.dumps(merged_pr(BRANCH)).encode()
    linear = json.dumps(linear_done("JA-77")).encode()

    def signed(headers: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in headers.items() if k != "Content-Type"}

    return [
        Route("claim", "PUT", "/api/staging/slots", b'{"slot_id": 3, "task": "JA-33"}', auth),
        Route(
            "deploy",
            "PUT",
            "/api/staging/slots",
            json.dumps(
                {"action": "deploy", "slot_id": 4, "branch": "feat-x", "commit": COMMIT}
            ).encode(),
            auth,
        ),
        Route(
            "failed deploy",
            "POST",
            "/api/staging/slots/5/deploy-failures",
            b'{"branch": "feat-x", "commit": "abcdef1", "step": "migrate", "serving": "none"}',
            auth,
        ),
        Route("release", "POST", "/api/staging/slots/4/release", b'{"force": true}', auth),
        Route(
            "server deploy", "POST", "/api/staging/slots/4/deploy", b'{"branch": "feat-x"}', auth
        ),
        Route("server rollback", "POST", "/api/staging/slots/4/rollback", b"{}", auth),
        Route(
            "github",
            "POST",
            "/api/staging/webhooks/github",
            github,
            signed(github_headers(GITHUB_SECRET, github, "pull_request")),
        ),
        Route(
            "linear",
            "POST",
            "/api/staging/webhooks/linear",
            linear,
            signed(linear_headers(LINEAR_SECRET, linear)),
        ),
    ]


@dataclass
class Served:
    url: str
    dsn: str
    routes: dict[str, Route]
    app: Flask

    def send(self, route: Route, content_type: str | None, body: bytes | None = None):
        headers = dict(route.headers)
        if content_type is not None:
            headers["Content-Type"] = content_type
        data = route.body if body is None else body
        return requests.request(
            route.method, self.url + route.path, data=data, headers=headers, timeout=10
        )

    def written(self) -> tuple:
        """Everything a request could write: the slots, the history, the deliveries."""
        conn = psycopg2.connect(self.dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT * FROM marts.staging_slots ORDER BY slot_id")
                slots = cur.fetchall()
                cur.execute("SELECT count(*) FROM marts.staging_slot_events")
                events = cur.fetchone()
                cur.execute("SELECT count(*) FROM marts.staging_webhook_deliveries")
                deliveries = cur.fetchone()
                cur.execute("SELECT count(*) FROM marts.staging_deploy_requests")
                requests_ = cur.fetchone()
        finally:
            conn.close()
        return slots, events, deliveries, requests_


@pytest.fixture(scope="module")
def served(postgres_admin_dsn: str, sandbox) -> Iterator[Served]:
    """The app (API and webhooks, both secrets set) on a database of its own, with the
    claims a request that got through would change."""
    name = f"media_{uuid.uuid4().hex[:12]}"
    admin_execute(postgres_admin_dsn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = postgres_admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    try:
        with pytest.MonkeyPatch.context() as env:
            for key, value in WEBHOOK_ENV.items():
                env.setenv(key, value)
            with running_api(dsn, sandbox.inventory_path) as api:
                registry = PostgresRegistry(dsn)
                for slot, task, branch in ((4, "JA-44", None), (6, "JA-66", BRANCH)):
                    registry.claim(slot, task, "alice@example.com", timedelta(hours=1))
                    if branch:
                        registry.record_deploy(slot, branch, COMMIT, "alice@example.com")
                registry.claim(7, "JA-77", "bob@example.com", timedelta(hours=1))
                registry.close()
                token = mint_token(SECRET, "admin@example.com", 3600)
                yield Served(api.url, dsn, {r.name: r for r in _routes(token)}, api.app)
    finally:
        admin_execute(
            postgres_admin_dsn,
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
        )


ROUTES = [
    "claim",
    "deploy",
    "failed deploy",
    "release",
    "server deploy",
    "server rollback",
    "github",
    "linear",
]
NOT_JSON = [
    None,  # no Content-Type at all
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json-patch",
    "application/jsonx",
    "application/json-patch+json",
    "text/json",
    "",
    ";charset=utf-8",
    "application/json/x",
]


def _one_error(response: requests.Response) -> str:
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    body = response.json()
    text = body.get("error") or body.get("message")
    assert isinstance(text, str) and "\n" not in text, body
    assert "Traceback" not in response.text
    return text


@pytest.mark.parametrize("content_type", NOT_JSON, ids=lambda t: repr(t))
@pytest.mark.parametrize("route", ROUTES)
def test_a_json_body_not_sent_as_application_json_is_415_and_writes_nothing(
    served: Served, route: str, content_type: str | None
) -> None:
    before = served.written()
    response = served.send(served.routes[route], content_type)
    assert response.status_code == 415, (route, content_type, response.text)
    assert "application/json" in _one_error(response)
    assert served.written() == before


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_application_json_with_parameters_or_in_capitals_is_json(
    served: Served, content_type: str
) -> None:
    """The same claim twice: claimed, then renewed (the 415 above were no accident)."""
    response = served.send(served.routes["claim"], content_type)
    assert response.status_code == 200, response.text
    assert response.json()["slot"]["task"] == "JA-33"


def test_a_route_sent_no_body_needs_no_content_type(served: Served) -> None:
    auth = served.routes["claim"].headers
    for path in ("/api/staging/slots", "/api/staging/slots/3", "/api/staging/history"):
        for headers in (auth, {**auth, "Content-Type": "text/plain"}):
            response = requests.get(served.url + path, headers=headers, timeout=10)
            assert response.status_code == 200, (path, headers, response.text)
    # The release's body is optional: none, and no Content-Type, releases.
    release = served.routes["release"]
    before = served.written()
    url = served.url + "/api/staging/slots/2/release"
    response = requests.post(url, headers=release.headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["released"] is False  # slot 2 was free: nothing to write
    assert served.written() == before


# What a header value can be on the wire (latin-1, no line breaks; requests refuses leading
# whitespace; DEL is no field character (RFC 9110): waitress answers it 400 before the app).
_HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
).map(str.strip)
WEBHOOKS = ("github", "linear")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    route=st.sampled_from(ROUTES),
    content_type=st.one_of(st.none(), _HEADER_TEXT),
    body=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_any_content_type_and_body_is_answered_4xx_never_5xx(
    served: Served, route: str, content_type: str | None, body: bytes | None
) -> None:
    """Whatever the header and body: a 4xx (or the request's success), never a 5xx, and a
    body not sent as application/json always 415 with nothing written (a webhook's body
    that is not the signed one: 401 first, the signature being the credential)."""
    given_type = (content_type or "").split(";", 1)[0].strip().lower()
    before = served.written()
    response = served.send(served.routes[route], content_type, body)
    assert response.status_code < 500, (route, content_type, body, response.text)
    if route in WEBHOOKS and body is not None and body != served.routes[route].body:
        assert response.status_code == 401, (route, content_type, body, response.text)
        assert served.written() == before
    elif given_type != "application/json" and (body is None or body):
        assert response.status_code == 415, (route, content_type, body, response.text)
        assert served.written() == before
    elif body is not None and response.status_code >= 400:
        assert served.written() == before


def test_the_openapi_document_names_415_wherever_a_body_is_taken(served: Served) -> None:
    document = requests.get(served.url + "/api/staging/openapi.json", timeout=10).json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            takes_body = "requestBody" in operation
            assert ("415" in operation["responses"]) == takes_body, (method, path)


def test_every_route_that_can_take_a_body_is_among_those_tested(served: Served) -> None:
    """A new POST/PUT/PATCH/DELETE route must join ROUTES (and so these tests)."""
    tested = {(r.method, re.sub(r"/\d+/", "/<slot_id>/", r.path)) for r in served.routes.values()}
    writes = {
        (method, rule.rule)
        for rule in served.app.url_map.iter_rules()
        for method in rule.methods or ()
        if method in ("POST", "PUT", "PATCH", "DELETE")
    }
    assert writes == tested
