"""`invoke verify --json`'s record: the verdict's fields as they always printed, `ok` and the
one-line `problem` derived from the problems of the agreement, the certificate and each
process."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from staging_ops import output
from staging_ops.deploy.verify import SlotVerdict
from staging_ops.drift import Drift, LiveRelease
from staging_ops.health import CertificateCheck
from staging_ops.processes.status import ProcessVerdict

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
        live=LiveRelease("r1", "c" * 40, None, True),
        unread="not read",
        drift=Drift("ok"),
        problems=problems,
        certificate=CertificateCheck("2027-01-01T00:00:00+00:00", "R3", None),
        processes={"web": ProcessVerdict("up", "job-search-web@staging-4.service")},
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
    assert data["live"] == {"release": "r1", "commit": "c" * 40, "branch": None, "verified": True}
    assert data["processes"] == {
        "web": {"state": "up", "unit": "job-search-web@staging-4.service", "problem": None}
    }


def test_a_live_release_not_read_is_its_reason():
    unread = replace(verdict([], []), live=None, unread="cannot reach h1")
    assert unread.as_json()["live"] == {"error": "cannot reach h1"}
