"""What a certificate covers and what status/verify say about it: pure, no host."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from staging_ops.tls import CertificateFacts, certificate_problem, covers

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("names", "name", "covered"),
    [
        ({"staging-4.justapply.net"}, "staging-4.justapply.net", True),
        ({"STAGING-4.justapply.net"}, "staging-4.justapply.net", True),
        ({"*.justapply.net"}, "staging-4.justapply.net", True),
        # A wildcard stands for exactly one label.
        ({"*.justapply.net"}, "a.staging-4.justapply.net", False),
        ({"*.justapply.net"}, "justapply.net", False),
        ({"staging-1.justapply.net"}, "staging-4.justapply.net", False),
        (set(), "staging-4.justapply.net", False),
    ],
)
def test_covers(names, name, covered):
    assert covers(frozenset(names), name) is covered


@pytest.mark.parametrize(
    ("facts", "problem"),
    [
        (CertificateFacts(exists=False), "no certificate"),
        (
            CertificateFacts(True, frozenset({"staging-1.justapply.net"}), NOW + timedelta(60)),
            "certificate does not cover staging-4.justapply.net",
        ),
        (
            CertificateFacts(True, frozenset({"staging-4.justapply.net"}), NOW + timedelta(13)),
            "certificate expires in 13d",
        ),
        (
            CertificateFacts(True, frozenset({"*.justapply.net"}), NOW - timedelta(hours=5)),
            "certificate expires in -5h",
        ),
        (CertificateFacts(True, frozenset({"*.justapply.net"}), NOW + timedelta(15)), None),
    ],
)
def test_what_status_reports_about_a_served_certificate(facts, problem):
    assert certificate_problem("staging-4.justapply.net", facts, NOW) == problem


def test_probe_facts_are_read_as_utc_times():
    facts = CertificateFacts.from_probe(
        {"exists": True, "names": ["a.justapply.net"], "not_after": 1798713494, "issuer": "CN=x"}
    )
    assert facts.not_after == datetime.fromtimestamp(1798713494, UTC)
    assert CertificateFacts.from_probe({"exists": False}) == CertificateFacts(exists=False)
    assert CertificateFacts.from_probe(None) == CertificateFacts(exists=False)
