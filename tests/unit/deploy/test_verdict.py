"""`invoke verify --json`'s record: the verdict's fields as they always printed, `ok` and the
one-line `problem` derived from the problems of the agreement, the certificate and each
process."""

from __future__ import annotations

import json

import pytest

from staging_ops import output
from staging_ops.deploy.verify import SlotVerdict
from staging_ops.drift import Drift
from staging_ops.health import CertificateCheck

KEYS = [
    "slot",
    "identifier",
    "url",
    "served",
    "registry_commit",
    "registry_branch",
    "live",
    "drift",
    "ok",
    "problem",
    "problems",
    "certificate",
    "processes",
    "process_problems",
]


def verdict(problems: list[str], process_problems: list[str]) -> SlotVerdict:
    return SlotVerdict(
        slot=4,
        identifier="staging-4",
        url="https://staging-4.justapply.net/api/version",
        served={"commit": "c" * 40, "branch": "main"},
        registry_commit="c" * 40,
        registry_branch="main",
        live={"release": "r1", "commit": "c" * 40, "verified": True},
        drift=Drift("ok"),
        problems=problems,
        certificate=CertificateCheck("2027-01-01T00:00:00+00:00", "R3", None),
        processes={"web": {"state": "up"}},
        process_problems=process_problems,
    )


@pytest.mark.parametrize(
    ("problems", "process_problems", "ok", "problem"),
    [
        ([], [], True, None),
        (["certificate expires in 2d"], [], False, "certificate expires in 2d"),
        (["HTTP 502"], ["scheduler (u) is down"], False, "HTTP 502; scheduler (u) is down"),
        ([], ["scheduler (u) is down"], False, "scheduler (u) is down"),
    ],
)
def test_the_verdict_as_json(problems, process_problems, ok, problem):
    data = json.loads(output.to_json(verdict(problems, process_problems).as_json()))
    assert list(data) == KEYS
    assert (data["ok"], data["problem"]) == (ok, problem)
    assert data["certificate"] == {
        "expires": "2027-01-01T00:00:00+00:00",
        "issuer": "R3",
        "problem": None,
    }
    assert data["drift"] == Drift("ok").as_json()
