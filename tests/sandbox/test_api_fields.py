"""Every field of every Staging API request, fed arbitrary JSON values (Hypothesis), over real
HTTP on a real registry: never a 5xx, a 400 writes nothing, and the server keeps serving.
Plus the bodies that used to end in a 500: very deep nesting, a ttl too large for a duration.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sandbox.api_client import Api

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
# A valid request per operation; each test replaces one field with an arbitrary value.
REQUESTS = {
    "claim": ("PUT", "/slots", {"slot_id": 3, "task": "JA-1", "ttl": "1h", "note": "n"}),
    "deploy": (
        "PUT",
        "/slots",
        {"action": "deploy", "slot_id": 3, "branch": "main", "commit": "abcdef1", "by": "x"},
    ),
    "release": ("POST", "/slots/3/release", {"by": "x", "task": "JA-1", "force": False}),
}
FIELDS = [
    (name, field)
    for name, (_, _, body) in REQUESTS.items()
    for field in [*body, "owner", "expired_only", "action", "reason", "expect_commit"]
    if name != "claim" or field not in ("expired_only", "reason", "expect_commit")
]


@pytest.mark.parametrize(("name", "field"), FIELDS, ids=[f"{n}.{f}" for n, f in FIELDS])
def test_any_value_of_any_field_is_never_a_server_error(api: Api, name: str, field: str) -> None:
    method, path, body = REQUESTS[name]

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(JSON)
    def property_(value: object) -> None:
        before = api.events()
        response = api.call(method, path, json={**body, field: value})
        assert response.status_code < 500, (value, response.text)
        assert "error" in response.json() or response.status_code == 200
        if response.status_code == 400:
            assert api.events() == before, value

    property_()
    assert api.call("GET", "/slots").status_code == 200


@given(st.text(max_size=12), st.text(max_size=12))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_history_query_is_never_a_server_error(api: Api, slot: str, limit: str) -> None:
    response = api.call("GET", "/history", params={"slot_id": slot, "limit": limit})
    assert response.status_code in (200, 400), (slot, limit, response.text)


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 50_000,
        b'{"slot_id": 3, "task": "JA-1", "note": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"slot_id": 3, "task": "JA-1", "ttl": 99999999999999999999}',
        b'{"slot_id": 3, "task": "JA-1", "ttl": "9999999999999w"}',
        b'{"slot_id": 3, "task": "JA-1", "ttl": 1e308}',
        b'{"slot_id": 3, "task": "JA-1", "ttl": NaN}',
        b'{"slot_id": 99999999999999999999, "task": "JA-1"}',
        b'{"slot_id": 3, "task": "JA-1", "note": "\\ud800"}',
    ],
)
def test_bodies_that_were_500_are_400(api: Api, data: bytes) -> None:
    before = api.events()
    response = api.call("PUT", "/slots", data=data, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert api.events() == before
    assert api.call("GET", "/slots").status_code == 200


def test_a_body_over_the_limit_is_413(api: Api) -> None:
    response = api.call("PUT", "/slots", data=b" " * (64 * 1024 + 1))
    assert response.status_code == 413 and "error" in response.json()


@pytest.mark.parametrize("path", ["/slots/٣", "/slots/03", "/slots/0", "/slots/99999999999999"])
def test_slot_ids_in_urls_are_ascii_digits(api: Api, path: str) -> None:
    assert api.call("GET", path).status_code == 404
