"""When a failed delivery is tried again (pure), what status shows, and delivery with an
in-memory store: an event delivered twice makes one Deployment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devtools.standins.github import GitHubStandIn
from staging_ops.integrations import github, outbox
from staging_ops.integrations.config import Service
from staging_ops.integrations.events import RELEASED, SUCCEEDED, Event
from staging_ops.integrations.http import DeliveryError
from staging_ops.integrations.status import Summary
from staging_ops.integrations.store import MemoryStore
from staging_ops.registry.outbox import OutboxCounts


@pytest.mark.parametrize(
    ("attempts", "retryable", "delay"),
    [
        (1, True, 2.0),
        (2, True, 4.0),
        (5, True, 32.0),
        (10, True, 600.0),  # capped
        (outbox.MAX_ATTEMPTS - 1, True, 600.0),
        (outbox.MAX_ATTEMPTS, True, None),  # given up
        (1, False, None),  # refused for good: not tried again
    ],
)
def test_backoff(attempts, retryable, delay):
    assert outbox.next_delay(attempts, retryable) == delay


def test_retry_time_is_now_plus_the_delay():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert outbox.retry_time(now, 3, True) == now + timedelta(seconds=8)
    assert outbox.retry_time(now, 3, False) is None


def test_the_retries_add_up_to_tens_of_minutes_not_hours():
    total = sum(outbox.next_delay(n, True) or 0 for n in range(1, outbox.MAX_ATTEMPTS))
    assert 20 * 60 < total < 90 * 60


def event(kind: str, commit: str = "a" * 40) -> Event:
    return Event(kind, 4, "staging-4", "https://s4", commit, "main", "JA-1", "o/r")


def test_delivered_twice_makes_one_deployment():
    with GitHubStandIn("tok") as gh:
        client, store = github.GitHub(Service(gh.url, "tok")), MemoryStore()
        github.deliver(event(SUCCEEDED), client, store)
        github.deliver(event(SUCCEEDED), client, store)
        assert len(gh.posts("deployments")) == 1
        [ident] = gh.deployments
        # The start was not told: in_progress first, so the order is GitHub's usual one.
        assert gh.states(ident) == ["in_progress", "success", "success"]
        github.deliver(event(RELEASED), client, store)
        github.deliver(event(RELEASED), client, store)  # nothing left active: nothing sent
        assert gh.states(ident)[-1] == "inactive"
        assert gh.states(ident).count("inactive") == 1
        gh.assert_valid()


def test_a_wrong_token_is_not_retried():
    with GitHubStandIn("right") as gh:
        client = github.GitHub(Service(gh.url, "wrong"))
        with pytest.raises(DeliveryError) as failure:
            github.deliver(event(SUCCEEDED), client, MemoryStore())
        assert not failure.value.retryable
        assert "wrong" not in str(failure.value)
        assert gh.invalid()  # the stand-in refused it, as GitHub would


def test_status_line_and_json():
    counts = {("github", 4): OutboxCounts(pending=2, failed=1)}
    told = Summary(on=("github",), counts=counts)
    assert told.line() == (
        "integrations: GitHub on (2 undelivered, 1 failed); "
        "Linear off (STAGING_LINEAR_API_KEY is not set)"
    )
    assert told.for_slot(4) == {"github": {"pending": 2, "failed": 1}, "linear": "off"}
    assert told.for_slot(5) == {"github": {"pending": 0, "failed": 0}, "linear": "off"}
    off = Summary(on=(), counts={})
    assert "GitHub off (STAGING_GITHUB_TOKEN is not set)" in off.line()
