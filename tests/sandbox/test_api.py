"""The Staging API over real HTTP (waitress on loopback) on a real registry database: tokens,
status codes, JSON error bodies, the OpenAPI document, and mounting the blueprint elsewhere.
The registry caches reads as `invoke api.serve`'s does; the granian server itself is
tests/sandbox/test_api_server.py's.
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import jwt
import psycopg2
import pytest
import requests
from flask import Flask
from psycopg2 import sql
from psycopg2.extensions import make_dsn

from staging_ops.inventory import load_inventory
from staging_ops.registry import PostgresRegistry, migrate
from staging_ops.web import api_blueprint, create_app
from staging_ops.web.auth import LEEWAY_SECONDS, mint_token
from staging_ops.web.server import BackgroundServer
from tests.sandbox.api_client import BASE, SECRET, Api, running_api

# Tokens minted at collection stay valid through a long suite (600 s did not: the suite takes
# longer, and a token expired before its test ran).
DAY = 86400


@pytest.fixture(scope="module")
def unchanged_api(postgres_admin_dsn: str, test_inventory_path: Path) -> Iterator[Api]:
    """One API for the many tests that must not write anything (each asserts it did not)."""
    name = f"api_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(postgres_admin_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with running_api(make_dsn(postgres_admin_dsn, dbname=name), test_inventory_path) as running:
            yield running
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


# Ids without the tokens' times: every xdist worker collects the same tests.
TOKEN_IDS = ["none", "not-a-jwt", "expired", "no-exp", "other-secret", "hs512", "alg-none"]
TOKEN_IDS += ["not-admin", "admin-yes"]


def _token(**claims: object) -> str:
    return jwt.encode({"sub": "x", **claims}, SECRET, algorithm="HS256")


def _hs512_token() -> str:
    """Signed with the right secret but another algorithm (PyJWT warns the key is short)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode({"admin": True, "exp": int(time.time()) + DAY}, SECRET, algorithm="HS512")


def assert_json_error(response: requests.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) <= {"error", "code"} and isinstance(body["error"], str)
    for word in words:
        assert word in body["error"]
    assert "Traceback" not in response.text and 'File "' not in response.text


# ---- tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "status", "word"),
    [
        (None, 401, "missing bearer token"),
        ("not-a-jwt", 401, "invalid token"),
        (_token(admin=True, exp=int(time.time()) - 3600), 401, "expired"),
        (_token(admin=True), 401, "no exp"),
        (
            jwt.encode(
                {"admin": True, "exp": int(time.time()) + DAY},
                "another-secret-of-32-bytes!!!!!!",
                algorithm="HS256",
            ),
            401,
            "invalid token",
        ),
        (_hs512_token(), 401, "invalid token"),
        (
            jwt.encode({"admin": True, "exp": int(time.time()) + DAY}, None, algorithm="none"),
            401,
            "invalid token",
        ),
        (_token(exp=int(time.time()) + DAY), 403, "admin"),
        (_token(admin="yes", role="user", exp=int(time.time()) + DAY), 403, "admin"),
    ],
    ids=TOKEN_IDS,
)
def test_tokens_are_refused(unchanged_api: Api, token: str | None, status: int, word: str) -> None:
    before = unchanged_api.events()
    for method, path, body in (
        ("GET", "/slots", None),
        ("PUT", "/slots", {"slot_id": 1, "task": "JA-1"}),
        ("POST", "/slots/1/release", {"force": True}),
    ):
        response = unchanged_api.call(method, path, token=token, json=body)
        assert_json_error(response, status, word)
        if status == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert unchanged_api.events() == before


@pytest.mark.parametrize(
    "claims", [{"admin": True}, {"role": "admin"}, {"roles": ["dev", "admin"]}]
)
def test_admin_claims_accepted(unchanged_api: Api, claims: dict) -> None:
    token = _token(exp=int(time.time()) + DAY, **claims)
    response = unchanged_api.call("GET", "/slots", token=token)
    assert response.status_code == 200
    assert [s["slot_id"] for s in response.json()["slots"]] == list(range(1, 11))


def test_a_token_accepted_before_is_refused_once_it_expires(unchanged_api: Api) -> None:
    """Verified tokens are remembered, but their expiry is checked on every request."""
    exp = int(time.time()) - LEEWAY_SECONDS + 3  # accepted for 2-3 s more
    token = _token(admin=True, exp=exp)
    assert unchanged_api.call("GET", "/slots", token=token).status_code == 200
    assert unchanged_api.call("GET", "/slots", token=token).status_code == 200
    time.sleep(max(0.0, exp + LEEWAY_SECONDS - time.time()) + 0.05)
    assert_json_error(unchanged_api.call("GET", "/slots", token=token), 401, "expired")


@pytest.mark.parametrize("kind", ["numeric string", "float"])
def test_an_exp_pyjwt_accepts_is_accepted_every_time(unchanged_api: Api, kind: str) -> None:
    """A numeric string or a float `exp` (PyJWT takes int(exp)): the remembered token must
    not turn into an internal error on its second use."""
    exp: object = f"{int(time.time()) + DAY}" if kind == "numeric string" else time.time() + DAY
    token = _token(admin=True, exp=exp)
    for _ in range(3):
        assert unchanged_api.call("GET", "/slots", token=token).status_code == 200


# ---- the endpoints ------------------------------------------------------------------------


def test_claim_get_deploy_release_history(api: Api) -> None:
    claimed = api.call(
        "PUT",
        "/slots",
        json={"slot_id": 4, "task": "ja-5", "owner": "alice", "ttl": "12h", "note": "QA; --'x'"},
    )
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["renewed"] is False
    assert claimed.json()["slot"]["task"] == "JA-5"
    slot = api.call("GET", "/slots/4").json()["slot"]
    assert (slot["status"], slot["owner"], slot["note"], slot["ttl_seconds"]) == (
        "claimed",
        "alice",
        "QA; --'x'",
        43200,
    )
    deployed = api.call(
        "PUT",
        "/slots",
        json={"action": "deploy", "slot_id": 4, "branch": "feature/a", "commit": "abcdef1"},
    )
    assert deployed.json()["slot"]["branch"] == "feature/a"
    conflict = api.call("PUT", "/slots", json={"slot_id": 4, "task": "JA-6", "owner": "bob"})
    assert_json_error(conflict, 409, "JA-5", "alice", "since")
    assert conflict.json()["code"] == "conflict"
    auto = api.call("PUT", "/slots", json={"slot_id": "auto", "task": "JA-6"})
    assert auto.json()["slot"]["slot_id"] == 1
    assert auto.json()["slot"]["owner"] == "admin@example.com"  # defaults to the token subject
    refused = api.call("POST", "/slots/4/release", json={"by": "bob"})
    assert_json_error(refused, 409, "JA-5", "force")
    released = api.call("POST", "/slots/4/release", json={"by": "alice"})
    assert released.json()["released"] is True and released.json()["before"]["task"] == "JA-5"
    history = api.call("GET", "/history", params={"slot_id": 4, "limit": 3}).json()["events"]
    assert [e["action"] for e in history] == ["release", "deploy", "claim"]
    assert history[0]["via"] == "api:admin@example.com"


@pytest.mark.parametrize(
    ("method", "path", "body", "words"),
    [
        ("PUT", "/slots", "not json", ["JSON object"]),
        ("PUT", "/slots", [1, 2], ["JSON object"]),
        ("PUT", "/slots", {"slot_id": 4, "task": "JA 5"}, ["task key"]),
        ("PUT", "/slots", {"slot_id": True, "task": "JA-5"}, ["slot_id"]),
        ("PUT", "/slots", {"slot_id": "4", "task": "JA-5"}, ["slot_id"]),
        ("PUT", "/slots", {"slot_id": 4, "task": "JA-5", "ttl": "forever"}, ["ttl"]),
        ("PUT", "/slots", {"slot_id": 4, "task": "JA-5", "owner": 7}, ["owner"]),
        ("PUT", "/slots", {"slot_id": 4, "task": "JA-5", "owner": "a\u0000b"}, ["control"]),
        ("PUT", "/slots", {"slot_id": 4, "task": "JA-5", "admin": True}, ["unknown field"]),
        ("PUT", "/slots", {"slot_id": 4, "task": "JA-5", "branch": "x"}, ["not allowed"]),
        (
            "PUT",
            "/slots",
            {"action": "deploy", "slot_id": 4, "branch": "-x", "commit": "abcdef1"},
            ["branch"],
        ),
        ("PUT", "/slots", {"action": "delete", "slot_id": 4}, ["action"]),
        ("POST", "/slots/4/release", {"force": "yes"}, ["force"]),
        ("POST", "/slots/4/release", "{", ["JSON object"]),
        ("GET", "/history?limit=0", None, ["limit"]),
        ("GET", "/history?slot_id=x", None, ["slot_id"]),
    ],
)
def test_malformed_requests_are_400_and_write_nothing(
    unchanged_api: Api, method: str, path: str, body: object, words: list[str]
) -> None:
    before = unchanged_api.events()
    kwargs = (
        {"data": body, "headers": {"Content-Type": "application/json"}}
        if isinstance(body, str)
        else {"json": body}
    )
    assert_json_error(unchanged_api.call(method, path, **kwargs), 400, *words)
    assert unchanged_api.events() == before


def test_unknown_slots_and_routes_are_404(unchanged_api: Api) -> None:
    assert_json_error(unchanged_api.call("GET", "/slots/99"), 404, "slot 99")
    assert_json_error(
        unchanged_api.call("PUT", "/slots", json={"slot_id": 99, "task": "JA-1"}), 404
    )
    assert_json_error(unchanged_api.call("POST", "/slots/99/release", json={}), 404)
    assert_json_error(unchanged_api.call("GET", "/slots/abc"), 404)
    assert_json_error(unchanged_api.call("GET", "/nothing-here"), 404)
    assert_json_error(unchanged_api.call("DELETE", "/slots"), 405)


def test_internal_errors_are_json_without_a_trace(unchanged_api: Api) -> None:
    assert_json_error(unchanged_api.call("GET", "/boom"), 500, "internal error")


def test_an_empty_registry_is_an_empty_list(api: Api) -> None:
    conn = psycopg2.connect(api.dsn)
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM marts.staging_slots")
    conn.close()
    for _ in range(2):
        response = api.call("GET", "/slots")
        assert response.status_code == 200 and response.json() == {"slots": []}


def test_registry_failure_is_503_without_details(api: Api) -> None:
    conn = psycopg2.connect(api.dsn)
    with conn, conn.cursor() as cur:
        cur.execute("DROP TABLE marts.staging_slots CASCADE")
    conn.close()
    response = api.call("GET", "/slots")
    assert_json_error(response, 503, "registry unavailable")
    assert "127.0.0.1" not in response.text and "marts" not in response.text


def test_openapi_document_is_public_and_matches_the_routes(unchanged_api: Api) -> None:
    response = unchanged_api.call("GET", "/openapi.json", token=None)
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.") and "admin" in doc["info"]["description"]
    rules = {
        rule.rule.replace("<slot_id>", "{slot_id}").replace("<request_id>", "{request_id}")
        for rule in unchanged_api.app.url_map.iter_rules()
        if rule.rule.startswith(BASE) and rule.endpoint != "boom"
    }
    assert set(doc["paths"]) == rules
    assert set(doc["paths"]["/api/staging/slots"]) == {"get", "put"}


def test_blueprint_mounts_in_another_app(registry_dsn: str, test_inventory_path: Path) -> None:
    """What the Campaign UI does: its own Flask app, our blueprint, our JWT rules."""
    migrate(registry_dsn, load_inventory(test_inventory_path))
    registry = PostgresRegistry(registry_dsn)
    campaign_ui = Flask("campaign_ui")
    campaign_ui.add_url_rule("/", "home", lambda: "campaign ui")
    campaign_ui.register_blueprint(api_blueprint(registry, SECRET))
    with BackgroundServer(campaign_ui, threads=2) as server:
        token = mint_token(SECRET, "ui")
        slots = requests.get(
            f"{server.url}{BASE}/slots", timeout=10, headers={"Authorization": f"Bearer {token}"}
        )
        denied = requests.get(f"{server.url}{BASE}/slots/1", timeout=10)
        home = requests.get(server.url + "/", timeout=10)
    registry.close()
    assert slots.status_code == 200 and len(slots.json()["slots"]) == 10
    assert_json_error(denied, 401)
    assert home.text == "campaign ui"


def test_create_app_needs_a_strong_secret(
    monkeypatch: pytest.MonkeyPatch, registry_dsn: str
) -> None:
    from staging_ops.errors import BadInput

    monkeypatch.delenv("STAGING_API_JWT_SECRET", raising=False)
    with pytest.raises(BadInput, match="STAGING_API_JWT_SECRET is not set"):
        create_app(dsn=registry_dsn)
    monkeypatch.setenv("STAGING_API_JWT_SECRET", "short")
    with pytest.raises(BadInput, match="at least 32 bytes"):
        create_app(dsn=registry_dsn)


def test_a_failed_deploy_is_history_on_both_backends_and_on_the_board(api: Api) -> None:
    from staging_ops.registry.api_client import ApiRegistry

    before = api.call("GET", "/slots/4").json()["slot"]
    answer = api.call(
        "POST",
        "/slots/4/deploy-failures",
        json={"branch": "feat-x", "commit": "abcdef1234", "step": "candidate verify",
              "serving": "20261201T000000Z-1111111"},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    # The client the CLI uses over the API, and PostgreSQL directly: the same event.
    client = ApiRegistry(api.url, mint_token(SECRET, "carol@example.com"))
    client.record_failed_deploy(4, "main", "", "carol@example.com", "fetch", "")
    direct = PostgresRegistry(api.dsn)
    try:
        direct.record_failed_deploy(4, "feat-y", "0123456", "dave", "main verify", "R2")
    finally:
        direct.close()
    assert api.call("GET", "/slots/4").json()["slot"] == before  # the row itself is unchanged
    events = api.call("GET", "/history", params={"slot_id": 4, "limit": 3}).json()["events"]
    assert [(e["action"], e["actor"], e["detail"]) for e in events] == [
        ("deploy failed", "dave", "feat-y@0123456: main verify failed; serving R2"),
        ("deploy failed", "carol@example.com", "main: fetch failed; serving nothing"),
        (
            "deploy failed",
            "admin@example.com",
            "feat-x@abcdef1234: candidate verify failed; serving 20261201T000000Z-1111111",
        ),
    ]
    token = mint_token(SECRET, "admin@example.com")
    board = requests.get(
        api.url + "/staging/board.json", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert board.status_code == 200, board.text
    shown = [e for e in board.json()["events"] if e["action"] == "deploy failed"]
    assert [e["detail"] for e in shown][:1] == ["feat-y@0123456: main verify failed; serving R2"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/slots/99/deploy-failures", {"branch": "x"}, 404),
        ("/slots/4/deploy-failures", {"branch": "-x"}, 400),
        ("/slots/4/deploy-failures", {}, 400),
        ("/slots/4/deploy-failures", {"branch": "x", "step": "a\nb"}, 400),
        ("/slots/4/deploy-failures", {"branch": "x", "commit": "not-hex"}, 400),
        ("/slots/4/deploy-failures", {"branch": "x", "slot": 4}, 400),
    ],
)
def test_a_bad_failed_deploy_report_is_refused_and_writes_nothing(
    unchanged_api: Api, path: str, body: dict, status: int
) -> None:
    before = unchanged_api.events()
    answer = unchanged_api.call("POST", path, json=body)
    assert answer.status_code == status, answer.text
    assert unchanged_api.events() == before
