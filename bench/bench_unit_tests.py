"""The pure tests' time: `pytest tests/unit` as a developer runs it (one process, no workers),
whole-process wall time and pytest's own figure, median of 3 (target: under 15 s), the CPU time
it takes (which a loaded machine does not change), and the slowest tests (pytest --durations)."""

from __future__ import annotations

import os
import re
import resource
import sys
from statistics import median

from bench.results import ROOT, median_of, timed, update_section

RUNS = 3
CRASH_NOTE = (
    " The crash-hook test waits for the crash the `crashloop-dag-processor` branch's hook makes"
    " 2 s after its process starts (it checks that it is not at once): time by design."
)
PYTEST = [str(ROOT / ".venv" / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", "tests/unit"]


def main() -> None:
    load = os.getloadavg()[0]  # other work on the machine slows every figure below
    reported: list[float] = []
    cpu: list[float] = []  # what the machine's other work does not change
    slowest = ""

    def run() -> float:
        nonlocal slowest
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        elapsed, out = timed([*PYTEST, "--durations=3"])
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        summary = re.search(r"(\d+) passed.* in ([\d.]+)s", out)
        if summary is None:
            raise SystemExit(f"no pytest summary in: {out[-300:]}")
        reported.append(float(summary.group(2)))
        slowest = "; ".join(
            f"`{m.group(2).split('::')[-1]}` {m.group(1)} s"
            for m in re.finditer(r"^([\d.]+)s call\s+(\S+)", out, re.M)
        )
        return elapsed

    wall, walls = median_of(RUNS, run)
    rows = [
        ("`pytest tests/unit`, whole process", wall, walls, "< 15 s"),
        ("- pytest's own figure (no start-up, collection)", median(reported), reported, ""),
        ("- CPU time, user + system, every process", median(cpu), cpu, ""),
    ]
    table = "\n".join(
        f"| {what} | {mid:.2f} s | {', '.join(f'{x:.2f}' for x in runs)} | {target} |"
        for what, mid, runs, target in rows
    )
    note = CRASH_NOTE if "crash_hook" in slowest else ""
    body = f"""| measure | median of {RUNS} | all runs | target |
|---|---|---|---|
{table}

Load average (1 min) at the start: {load:.1f}. Slowest: {slowest}.{note}
"""
    update_section("Pure tests (tests/unit)", body)
    print(body)


if __name__ == "__main__":
    sys.exit(main())
