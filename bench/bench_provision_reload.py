"""provision-all changing a deployed slot's environment (`[app.env]`), on the sandbox with the
sample app, under two probes through nginx (`/api/version` and `/airflow/health`, ~50
requests a second each, and 2 s after): the whole `invoke provision-all` time, failed requests
per path and the longest gap (from the last answer before a failure to the first after it),
for the hand-over (target 0 failed, no gap) and, for comparison, the restart in place it makes
for a live release that was never verified (what every changed slot got before).

STAGING_BENCH_APP=real runs it on the real application instead (devtools/realapp.py: the
Campaign UI under gunicorn and Airflow 2, the shipped inventory's [app] and [app.env], slot 3).
STAGING_BENCH_PORT_BASE moves the sandbox's ports (default 26500); STAGING_BENCH_RUNS the runs."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.results import INVOKE, timed, update_section
from devtools import realapp, sandbox
from devtools.probe import Probe
from staging_ops.inventory import load_inventory

REAL = os.environ.get("STAGING_BENCH_APP") == "real"
RUNS = int(os.environ.get("STAGING_BENCH_RUNS", "2" if REAL else "5"))
SLOT = 3 if REAL else 4
# Either a Sandbox or a RealApp: both have env(), hosts and inventory_path.
Box = sandbox.Sandbox | realapp.RealApp


@dataclass
class TimedProbe(Probe):
    """A Probe that keeps when each answer came."""

    times: list[float] = field(default_factory=list)

    def _ask(self, session: requests.Session) -> str:
        answer = super()._ask(session)
        self.times.append(time.monotonic())
        return answer

    def longest_gap(self) -> float:
        """Seconds from the last good answer before a run of failures to the first after."""
        longest, last_good, failed_since = 0.0, None, False
        for answer, when in zip(self.answers, self.times, strict=False):
            if answer.startswith("failed"):
                failed_since = True
                continue
            if failed_since and last_good is not None:
                longest = max(longest, when - last_good)
            last_good, failed_since = when, False
        return longest


def with_env(box: Box, directory: Path, value: str) -> Path:
    """The box's inventory with [app.env] BENCH_RUN = value, under the same file name (the
    vhosts' comment names it); into its [app.env] where it has one (the real app's)."""
    path = directory / value / box.inventory_path.name
    path.parent.mkdir(parents=True)
    text = box.inventory_path.read_text()
    line = f'BENCH_RUN = "{value}"\n'
    if "\n[app.env]\n" in text:
        text = text.replace("\n[app.env]\n", f"\n[app.env]\n{line}", 1)
    else:
        text += f"\n[app.env]\n{line}"
    path.write_text(text)
    return path


def probed(box: Box, inventory: Path) -> tuple[float, int, int, float]:
    """(seconds, failed on /, failed on /airflow, the longest gap on either) of one run."""
    inv = load_inventory(box.inventory_path)
    chosen = inv.slots[SLOT]
    host = inv.host_of(chosen)
    env = {**box.env(), "STAGING_INVENTORY": str(inventory)}
    ui = TimedProbe(host, chosen)
    airflow = TimedProbe(host, chosen, path="/airflow/health")
    with ui, airflow:
        seconds = timed([INVOKE, "provision-all", "--slots", str(SLOT)], env=env)[0]
        ui.stop(after=2)
        airflow.stop(after=0)
    return seconds, ui.failed, airflow.failed, max(ui.longest_gap(), airflow.longest_gap())


def series(box: Box, directory: Path, label: str) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"seconds": [], "ui": [], "airflow": [], "gap": []}
    for i in range(RUNS):
        seconds, ui, airflow, gap = probed(box, with_env(box, directory, f"{label}-{i}"))
        for key, value in zip(found, (seconds, ui, airflow, gap), strict=True):
            found[key].append(value)
    return found


def row(name: str, runs: dict[str, list[float]], target: str) -> str:
    seconds = ", ".join(f"{s:.2f}" for s in runs["seconds"])
    return (
        f"| {name} | {statistics.median(runs['seconds']):.2f} s ({seconds}) | "
        f"{int(sum(runs['ui']))} / {int(sum(runs['airflow']))} | {max(runs['gap']):.2f} s | "
        f"{target} |"
    )


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-reload-"))
    directory.chmod(0o755)
    base = int(os.environ.get("STAGING_BENCH_PORT_BASE", "26500"))
    ports = sandbox.Ports(base=base, slot_offset=base - 22200)
    box: Box = realapp.up(directory, ports) if REAL else sandbox.up(directory, ports=ports)
    inventories = Path(tempfile.mkdtemp(prefix="bench-reload-inv-"))
    try:
        timed([INVOKE, "provision-all"], env=box.env())
        task = f"JA-{SLOT}"
        deploy = [INVOKE, "deploy", "--slot", str(SLOT), "--branch", "main", "--task", task]
        timed(deploy, env=box.env())
        handed = series(box, inventories, "handover")
        current = box.hosts[0].root / f"srv/staging/staging-{SLOT}/current"
        (current / ".ok").unlink()  # never verified: restarted in place
        in_place = series(box, inventories, "inplace")
    finally:
        (realapp.down if REAL else sandbox.down)(directory)
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(inventories, ignore_errors=True)
    app = "the real app (Airflow 2.10.5, the shipped [app])" if REAL else "the sample app"
    body = f"""
`bench/bench_provision_reload.py`: `invoke provision-all --slots {SLOT}` after the slot's
`[app.env]` changed (a new value each run), {app} deployed, under two probes through
nginx (`/api/version` and `/airflow/health`, ~50 requests/s each, and 2 s after); {RUNS} runs
each. The gap is from the last answer before a failure to the first after it, on either path.

| env taken by | provision-all, median (runs) | failed / and /airflow | longest gap | target |
|---|---|---|---|---|
{row("hand-over (live release verified)", handed, "0 / 0, no gap")}
{row("restart in place (live release never verified)", in_place, "says how long")}

The restart in place is what every changed deployed slot got before provision-all used the
deploy's hand-over.
"""
    title = "provision-all with a changed env (" + ("real app" if REAL else "sandbox, sample app")
    update_section(title + ")", body)
    print(body)


if __name__ == "__main__":
    main()
