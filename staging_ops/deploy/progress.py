"""Progress while one remote command runs long and says little: pip building a venv (half a
minute to minutes for Airflow), a release phase migrating a database. Every PROGRESS_EVERY
seconds a line says what the step still waits for, so a slow step reads as progress, not as a
hang. The command may say what it is doing: a stdout line `progress: TEXT` becomes the state
the next line shows (nothing else it prints is shown: an app's output may hold secrets)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# How often a wait on something slow says so.
PROGRESS_EVERY = 5.0
MARK = "progress: "


@contextmanager
def ticking(
    say: Callable[[str], None], what: str, state: str, every: float = PROGRESS_EVERY
) -> Iterator[Callable[[str], None]]:
    """While the block runs, `say("WHAT: STATE (Ns)")` every `every` seconds, from a thread of
    its own; yields the callback for the command's stdout lines."""
    stop = threading.Event()
    current = [state]
    start = time.monotonic()

    def on_line(line: str) -> None:
        if line.startswith(MARK) and line[len(MARK) :].strip():
            current[0] = line[len(MARK) :].strip()

    def tick() -> None:
        while not stop.wait(every):
            say(f"{what}: {current[0]} ({time.monotonic() - start:.0f}s)")

    thread = threading.Thread(target=tick, name=f"progress of {what}", daemon=True)
    thread.start()
    try:
        yield on_line
    finally:
        stop.set()
        thread.join()
