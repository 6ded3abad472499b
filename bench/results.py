"""Shared by the bench scripts: timing whole processes and keeping bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
INVOKE = str(ROOT / ".venv" / "bin" / "invoke")


def timed(args: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall time of one whole process (as an operator waits for it) and its stdout."""
    start = time.perf_counter()
    result = subprocess.run(
        args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}): {result.stderr[-500:]}")
    return elapsed, result.stdout


def median_of(runs: int, fn) -> tuple[float, list[float]]:
    samples = [fn() for _ in range(runs)]
    return statistics.median(samples), samples


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {platform.python_version()}"


def update_section(title: str, body: str) -> None:
    """Replace (or append) the `## title` section of bench/RESULTS.md, keeping the others."""
    text = (
        RESULTS.read_text()
        if RESULTS.exists()
        else "# Benchmark results\n\n"
        "Written by the scripts in bench/; each section is replaced when its script runs.\n"
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"## {title}\n\n_{stamp}, {machine()}_\n\n{body.strip()}\n"
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line == f"## {title}"), None)
    if start is None:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        text = "\n".join(lines[:start]) + "\n" + section + "\n" + "\n".join(lines[end:])
    RESULTS.write_text(text.rstrip("\n") + "\n")
