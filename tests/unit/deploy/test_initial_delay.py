"""app.json's initialDelay counts from the process's start, once: a check of a process that
started a while ago waits only what is left of it, and the same process asked again through
nginx does not wait it again (candidate.run_check's `started`)."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from staging_ops.deploy import candidate
from staging_ops.processes import HealthCheck

HEALTHY = json.dumps({"metadatabase": {"status": "healthy"}}).encode()
CHECK = HealthCheck(
    path="/airflow/health", attempts=3, wait=1.0, timeout=5.0, initial_delay=2.0, name="health"
)


@pytest.fixture
def slept(monkeypatch) -> list[float]:
    """What the check slept, instead of sleeping it."""
    naps: list[float] = []
    monkeypatch.setattr(candidate.time, "sleep", naps.append)
    return naps


def ask(started: float | None) -> str:
    deployer = SimpleNamespace(app=SimpleNamespace(name="job-search"), log=None)
    return candidate.run_check(
        deployer,  # type: ignore[arg-type]
        "job-search-airflow-webserver@staging-4.service",
        lambda path, timeout: (200, HEALTHY),
        CHECK,
        "abc",
        time.monotonic() + 60,
        60,
        "on its port",
        started,
    )


def test_a_process_that_starts_now_waits_the_whole_delay(slept):
    assert ask(None) == "/airflow/health"
    assert slept == [pytest.approx(2.0, abs=0.05)]


def test_a_process_that_started_a_second_ago_waits_the_rest(slept):
    ask(time.monotonic() - 1.0)
    assert slept == [pytest.approx(1.0, abs=0.05)]


def test_a_process_already_answering_does_not_wait_it_again(slept):
    ask(0.0)
    assert slept == [0.0]
