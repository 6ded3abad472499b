"""The plan of a host from facts alone, as pyinfra tests its operations: each
fixtures/plans/*.json gives the facts (see plan_fixtures.py) and the plan expected from them:
changes per step, the install/prepare/services scripts' arguments, the upload, the handlers
and the nginx files a failed `nginx -t` puts back."""

from __future__ import annotations

import json
import os

import pytest

from tests.unit.provision.plan_fixtures import FIXTURES, plan_as_json, plan_host

PLANS = sorted((FIXTURES / "plans").glob("*.json"))
# Set to write each fixture's "plan" from the code (then read the diff before committing it).
REWRITE = os.environ.get("STAGING_REWRITE_PLAN_FIXTURES") == "1"


@pytest.mark.parametrize("path", PLANS, ids=[p.stem for p in PLANS])
def test_plan_from_facts(path):
    fixture = json.loads(path.read_text())
    actual = plan_as_json(*plan_host(fixture["facts"]))
    if REWRITE:
        fixture["plan"] = actual
        path.write_text(json.dumps(fixture, indent=2) + "\n")
    assert actual == fixture["plan"]


def test_every_case_the_plans_must_cover_has_a_fixture():
    names = {p.stem for p in PLANS}
    assert {
        "fresh-host",
        "no-op",
        "drifted-vhost",
        "changed-unit",
        "pending-marker",
        "unreadable-marker",
    } <= names
