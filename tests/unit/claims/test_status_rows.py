"""status's rows (claims.rows.StatusRow): a table of rows -> the exact JSON `status --json`
prints, and the text table; the dashboard's row is the same claim side."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from staging_ops import output
from staging_ops.claims.rows import StatusRow
from staging_ops.claims.view import status_table
from staging_ops.drift import LiveRelease
from staging_ops.health import CertificateCheck, LiveChecks, SlotChecks
from staging_ops.inventory import Slot
from staging_ops.processes.status import HealthAnswer, ProcessVerdict
from staging_ops.slots.model import SlotState

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
A = "a" * 40
SLOT4 = Slot(
    4, "staging-4", "staging-4.justapply.net", 5004, 8084, "job_search_staging_4", "qa", "h"
)
CLAIMED = SlotState(
    4,
    "staging-4",
    "staging-4.justapply.net",
    "qa",
    "claimed",
    task="JA-7",
    owner="alice",
    branch="main",
    commit=A,
    claimed_at=NOW - timedelta(hours=2),
    expires_at=NOW + timedelta(hours=1),
    deployed_at=NOW - timedelta(hours=1),
    updated_at=NOW - timedelta(hours=1),
)
CERT = CertificateCheck("2027-01-01T00:00:00+00:00", "R3", None)
UNIT = "job-search-web@staging-4.service"
CHECKED = LiveChecks(
    probes=SlotChecks("up", A, HealthAnswer("/airflow/health", False), CERT),
    live=LiveRelease("r1", A, "main", True),
    memory_mb=312,
    processes={"web": ProcessVerdict("up", UNIT)},
)
CLAIM_JSON = {
    "slot": 4,
    "slot_id": 4,
    "identifier": "staging-4",
    "subdomain": "staging-4.justapply.net",
    "role": "qa",
    "status": "claimed",
    "task": "JA-7",
    "owner": "alice",
    "branch": "main",
    "commit": A,
    "note": None,
    "claimed_at": "2026-12-05T10:00:00+00:00",
    "expires_at": "2026-12-05T13:00:00+00:00",
    "deployed_at": "2026-12-05T11:00:00+00:00",
    "updated_at": "2026-12-05T11:00:00+00:00",
    "ttl_seconds": None,
    "expired": False,
}
UNREGISTERED_JSON = {
    "slot": 4,
    "slot_id": 4,
    "identifier": "staging-4",
    "subdomain": "staging-4.justapply.net",
    "role": "qa",
    "status": "unregistered",
    "expired": False,
}
NO_HEALTH = dict.fromkeys(
    (
        "ui",
        "airflow",
        "processes",
        "certificate",
        "live",
        "served_commit",
        "drift",
        "memory_mb",
    )
)
NOT_READ = {
    "state": "unknown",
    "pairs": [],
    "unverified": None,
    "label": "unknown",
    "message": "drift unknown: the droplet's current release was not read: not read",
}


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (StatusRow(4, CLAIMED, SLOT4, False), CLAIM_JSON | NO_HEALTH),
        (StatusRow(4, None, SLOT4, False), UNREGISTERED_JSON | NO_HEALTH),
        (
            StatusRow(4, CLAIMED, SLOT4, False, with_health=True, checks=CHECKED),
            CLAIM_JSON
            | {
                "ui": "up",
                "airflow": "down",
                "processes": {"web": {"state": "up", "unit": UNIT, "problem": None}},
                "certificate": CERT.as_json(),
                "live": {"release": "r1", "commit": A, "branch": "main", "verified": True},
                "served_commit": A,
                "drift": {
                    "state": "ok",
                    "pairs": [],
                    "unverified": None,
                    "label": "no",
                    "message": None,
                },
                "memory_mb": 312,
            },
        ),
        # Health asked, but this slot's probes and its droplet were not read: "?" and unknown.
        (
            StatusRow(4, CLAIMED, None, False, with_health=True),
            CLAIM_JSON | NO_HEALTH | {"ui": "?", "airflow": "?", "drift": NOT_READ},
        ),
        (
            StatusRow(4, CLAIMED, SLOT4, False, with_health=True, checks=LiveChecks(unread="h1")),
            CLAIM_JSON
            | NO_HEALTH
            | {
                "ui": "?",
                "airflow": "?",
                "live": {"error": "h1"},
                "drift": NOT_READ | {"message": NOT_READ["message"][: -len("not read")] + "h1"},
            },
        ),
    ],
)
def test_a_status_row_as_json(row, expected):
    printed = json.loads(output.to_json(row.as_json()))
    assert printed == expected
    assert list(printed) == list(expected)


def test_the_status_table():
    rows = [
        StatusRow(4, CLAIMED, SLOT4, False, with_health=True, checks=CHECKED),
        StatusRow(5, None, None, False, with_health=True),
    ]
    assert status_table(rows, NOW).splitlines() == [
        "SLOT  SUBDOMAIN                STATUS        TASK  OWNER  BRANCH  COMMIT    DEPLOYED"
        "  EXPIRES  UI  AIRFLOW  PROCESSES  TLS                    DRIFT",
        "4     staging-4.justapply.net  claimed       JA-7  alice  main    aaaaaaaa  1h ago  "
        "  in 1h    up  down     web✓       ok, expires in 26d12h  no",
        "5     -                        unregistered  -     -      -       -         -       "
        "  -        ?   ?        -          -                      unknown",
    ]
    # Without health, its columns are left out; the row says whether the claim expired.
    assert (
        status_table([StatusRow(4, CLAIMED, SLOT4, True)], NOW)
        .splitlines()[1]
        .endswith("EXPIRED in 1h")
    )
