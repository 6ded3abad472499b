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


class Clock:
    """A clock that sleeping advances: the check's timing without waiting it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.naps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(candidate.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(candidate.time, "sleep", fake.sleep)
    monkeypatch.setattr(candidate, "check_units_alive", lambda deployer, units: None)
    return fake


def listening_at(clock: Clock, at: float, answer: tuple[int, bytes] = (200, HEALTHY)):
    """A port nobody listens on before `at` (refused, as an SSH channel to it is), then
    answering `answer`; the times it was asked."""
    asked: list[float] = []

    def get(path: str, timeout: float) -> tuple[int, bytes]:
        asked.append(clock.now)
        if clock.now < at:
            raise ConnectionRefusedError
        return answer

    return get, asked


def check(clock: Clock, get, attempts: int = 3) -> str:
    deployer = SimpleNamespace(app=SimpleNamespace(name="job-search"), log=None)
    return candidate.run_check(
        deployer,  # type: ignore[arg-type]
        "job-search-airflow-webserver@staging-4.service",
        get,
        HealthCheck(path="/airflow/health", attempts=attempts, wait=1.0, timeout=5.0, name="h"),
        "abc",
        clock.now + 60,
        60,
        "on its port",
        clock.now,
    )


def test_a_port_that_starts_listening_within_an_attempt_is_seen_at_once(clock):
    start = clock.now
    get, asked = listening_at(clock, start + 1.35)
    assert check(clock, get) == "/airflow/health"
    # Seen within a poll of listening, not at the next attempt 2 s after the start.
    assert start + 1.35 <= asked[-1] < start + 1.35 + candidate.NOT_LISTENING_POLL + 1e-9


def test_a_port_that_never_listens_fails_after_its_attempts_spaced_by_wait(clock):
    start = clock.now
    get, asked = listening_at(clock, float("inf"))
    with pytest.raises(candidate.StagingError, match="failed 3 attempts: no answer"):
        check(clock, get, attempts=3)
    # The budget stays Dokku's: attempts x wait, however often the port was asked meanwhile.
    assert asked[-1] - start == pytest.approx(3.0 - candidate.NOT_LISTENING_POLL, abs=0.06)
    assert len(asked) > 3


def test_a_wrong_answer_ends_its_attempt_and_the_next_comes_wait_later(clock):
    start = clock.now
    get, asked = listening_at(clock, start, answer=(503, b"{}"))
    with pytest.raises(candidate.StagingError, match="failed 2 attempts"):
        check(clock, get, attempts=2)
    assert asked == [start, start + 1.0]
