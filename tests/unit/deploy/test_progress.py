"""deploy.progress: a line every so often while a long remote command runs, saying what it
waits for; the command's own `progress: ` lines set that, and nothing else it prints shows."""

from __future__ import annotations

import threading
import time

from staging_ops.deploy.progress import ticking


def test_a_slow_command_gets_a_line_each_period_with_its_latest_state():
    said: list[str] = []
    with ticking(said.append, "export + venv", "exporting the commit", every=0.05) as on_line:
        time.sleep(0.12)
        on_line("progress: building the venv 0123abcd (pip install)")
        on_line("Collecting apache-airflow with DATABASE_URL=postgresql://u:secret@h/db")
        on_line("progress:   ")  # an empty state keeps the one before
        time.sleep(0.12)
    assert len(said) >= 3
    assert said[0] == "export + venv: exporting the commit (0s)"
    assert said[-1].startswith("export + venv: building the venv 0123abcd (pip install) (")
    assert not any("secret" in line or "Collecting" in line for line in said)


def test_a_quick_command_says_nothing_and_leaves_no_thread_behind():
    said: list[str] = []
    before = threading.active_count()
    with ticking(said.append, "migrate", "the release phase is running", every=5):
        pass
    assert said == []
    assert threading.active_count() == before


def test_the_ticker_stops_when_the_command_fails():
    said: list[str] = []
    try:
        with ticking(said.append, "migrate", "the release phase is running", every=0.02):
            raise RuntimeError("exit 1")
    except RuntimeError:
        pass
    count = len(said)
    time.sleep(0.08)
    assert len(said) == count
