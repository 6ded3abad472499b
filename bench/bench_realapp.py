"""The real application on the sandbox (devtools/realapp.py: the Campaign UI under gunicorn
and Apache Airflow, the shipped inventory's [app]): first deploy with the venv build, redeploy
and rollback (median of 5 each, targets: redeploy <= 15 s, rollback <= 12 s with a warm venv)
for Airflow 2 (no Procfile) and Airflow 3 (its Procfile and app.json), every redeploy and
rollback under two probes through nginx (/ via /api/version, and Airflow's health path):
failed requests per path and the longest /airflow gap; and the slot's memory (PSS of its
units' process trees) steady and at its peak during a hand-over. Airflow 3 is measured once
more without the probes: on 2 cores their requests take CPU the deploy's own starts need, so
the two rows tell the deploy's time from the traffic's share.

STAGING_BENCH_PORT_BASE moves the sandbox's ports (default 25600); STAGING_BENCH_RUNS the runs."""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.results import INVOKE, timed, update_section
from devtools import realapp
from devtools.probe import Probe
from devtools.sandbox import Ports
from devtools.sandbox.processes import unit_pids
from devtools.sandbox.stopping import descendants
from staging_ops.inventory import load_inventory

RUNS = int(os.environ.get("STAGING_BENCH_RUNS", "5"))
HEALTH = {"main": "/airflow/health", "airflow3": "/airflow/api/v2/monitor/health"}


def slot_pss_mb(real: realapp.RealApp, identifier: str) -> float:
    """PSS of every process of the slot's units (main and candidate), in MB."""
    total = 0
    for unit, pid in unit_pids(real.hosts[0]).items():
        if f"@{identifier}" not in unit:
            continue
        for each in (pid, *descendants(pid)):
            try:
                lines = Path(f"/proc/{each}/smaps_rollup").read_text().splitlines()
            except OSError:
                continue
            total += sum(int(line.split()[1]) for line in lines if line.startswith("Pss:"))
    return total / 1024


class MemoryPeak:
    """Samples the slot's PSS every 0.5 s while a deploy runs."""

    def __init__(self, real: realapp.RealApp, identifier: str):
        self.real, self.identifier, self.peak = real, identifier, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, slot_pss_mb(self.real, self.identifier))
            self._stop.wait(0.5)


def gap(answers: list[str], interval: float = 0.02) -> float:
    """The longest run of failed answers, in seconds (at the probe's pace)."""
    longest = run = 0
    for answer in answers:
        run = run + 1 if answer.startswith("failed") else 0
        longest = max(longest, run)
    return longest * interval


def probed(real, slot: int, branch_health: str, args: list[str]) -> tuple[float, int, int, float]:
    inventory = load_inventory(real.inventory_path)
    chosen = inventory.slots[slot]
    host = inventory.host_of(chosen)
    with Probe(host, chosen) as ui, Probe(host, chosen, path=branch_health) as airflow:
        seconds = timed(args, env=real.env())[0]
        ui.stop(after=5)
        airflow.stop(after=0)
    return seconds, ui.failed, airflow.failed, gap(airflow.answers)


def deploy_args(slot: int, branch: str) -> list[str]:
    return [INVOKE, "deploy", "--slot", str(slot), "--task", f"JA-{slot}", "--branch", branch]


def rollback_args(slot: int) -> list[str]:
    return [INVOKE, "rollback", "--slot", str(slot), "--task", f"JA-{slot}"]


def quiet(real: realapp.RealApp, slot: int, other: str) -> dict[str, list[float]]:
    """Redeploys of `other` and rollbacks, alternating as bench_branch's, without probes."""
    redeploys, rollbacks = [], []
    for _ in range(RUNS):
        redeploys.append(timed(deploy_args(slot, other), env=real.env())[0])
        rollbacks.append(timed(rollback_args(slot), env=real.env())[0])
    return {"redeploys": redeploys, "rollbacks": rollbacks}


def bench_branch(real: realapp.RealApp, slot: int, base: str, other: str) -> dict[str, object]:
    first = timed(deploy_args(slot, base), env=real.env())[0]
    time.sleep(5)
    steady = slot_pss_mb(real, f"staging-{slot}")
    health = HEALTH[base]
    redeploys, rollbacks, failed_ui, failed_airflow, gaps = [], [], [], [], []
    peak = 0.0
    for _ in range(RUNS):
        with MemoryPeak(real, f"staging-{slot}") as memory:
            seconds, ui, airflow, longest = probed(real, slot, health, deploy_args(slot, other))
        peak = max(peak, memory.peak)
        redeploys.append(seconds)
        failed_ui.append(ui)
        failed_airflow.append(airflow)
        gaps.append(longest)
        seconds, ui, airflow, longest = probed(real, slot, health, rollback_args(slot))
        rollbacks.append(seconds)
        failed_ui.append(ui)
        failed_airflow.append(airflow)
        gaps.append(longest)
    return {
        "first": first,
        "redeploys": redeploys,
        "rollbacks": rollbacks,
        "failed_ui": failed_ui,
        "failed_airflow": failed_airflow,
        "gaps": gaps,
        "steady": steady,
        "peak": peak,
    }


def timings(r: dict) -> str:
    """The redeploy and rollback cells: each median of the runs, and the runs."""
    cells = []
    for key in ("redeploys", "rollbacks"):
        runs = r[key]
        listed = ", ".join(f"{x:.1f}" for x in runs)
        cells.append(f"{statistics.median(runs):.1f} s ({listed})")
    return " | ".join(cells)


def row(name: str, r: dict) -> str:
    return (
        f"| {name} | {r['first']:.1f} s | {timings(r)} | {sum(r['failed_ui'])} / "
        f"{sum(r['failed_airflow'])} | {max(r['gaps']):.2f} s | "
        f"{r['steady']:.0f} MB / {r['peak']:.0f} MB |"
    )


def quiet_row(name: str, r: dict[str, list[float]]) -> str:
    return f"| {name} | - | {timings(r)} | - | - | - |"


def main() -> None:
    base = int(os.environ.get("STAGING_BENCH_PORT_BASE", "25600"))
    directory = Path(tempfile.mkdtemp(prefix="bench-realapp-"))
    directory.chmod(0o755)
    real = realapp.up(directory, Ports(base=base, slot_offset=base - 22200))
    try:
        timed([INVOKE, "provision-all"], env=real.env())
        two = bench_branch(real, 3, "main", "feat-x")
        three = bench_branch(real, 7, "airflow3", "airflow3")
        three_quiet = quiet(real, 7, "airflow3")
    finally:
        realapp.down(directory)
    load = os.getloadavg()[0]
    body = f"""Load average at the end: {load:.1f} on {os.cpu_count()} cores. Redeploy: a new
commit with the same requirements (warm venv), until verified; rollback: back to the previous
verified release. Both under two probes through nginx (~50 requests a second each, and 5 s
after): `/api/version` and Airflow's health path. Memory: PSS of the slot's processes (main and
candidate units' whole process trees), 5 s after the first deploy, and the peak sampled every
0.5 s during the redeploys' hand-overs.

| app | first deploy (venv build) | redeploy, median of {RUNS} (runs) | rollback, median of {RUNS} (runs) | failed requests / and /airflow | longest /airflow gap | memory steady / peak |
|---|---|---|---|---|---|---|
{row("Airflow 2.10.5, no Procfile (the shipped [app])", two)}
{row("Airflow 3.3.2, Procfile + app.json", three)}
{quiet_row("Airflow 3.3.2, the same, without the probes", three_quiet)}

Targets: redeploy <= 15 s, rollback <= 12 s; failed requests 0 / 0, /airflow gap 0 s.
"""  # noqa: E501
    update_section("the real app (Campaign UI + Airflow)", body)
    print(body)


if __name__ == "__main__":
    main()
