"""provision-all changing a deployed slot's environment (`[app.env]`), on the sandbox with the
sample app, under two probes through nginx (`/api/version` and `/airflow/health`, ~50
requests a second each, and 2 s after): the whole `invoke provision-all` time, failed requests
per path and the longest gap (from the last answer before a failure to the first after it),
for the hand-over (target 0 failed, no gap) and, for comparison, the restart in place it makes
for a live release that was never verified (what every changed slot got before).

STAGING_BENCH_PORT_BASE moves the sandbox's ports (default 26800); STAGING_BENCH_RUNS the runs."""

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
from devtools import sandbox
from devtools.probe import Probe
from staging_ops.inventory import load_inventory

RUNS = int(os.environ.get("STAGING_BENCH_RUNS", "5"))
SLOT = 4


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


def with_env(box: sandbox.Sandbox, directory: Path, value: str) -> Path:
    """The sandbox's inventory with [app.env] BENCH_RUN = value (same file name: the vhosts'
    comment names it)."""
    path = directory / value / "inventory.toml"
    path.parent.mkdir(parents=True)
    path.write_text(f'{box.inventory_path.read_text()}\n[app.env]\nBENCH_RUN = "{value}"\n')
    return path


def probed(box: sandbox.Sandbox, inventory: Path) -> tuple[float, int, int, float]:
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


def series(box: sandbox.Sandbox, directory: Path, label: str) -> dict[str, list[float]]:
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
    base = int(os.environ.get("STAGING_BENCH_PORT_BASE", "26800"))
    box = sandbox.up(directory, ports=sandbox.Ports(base=base, slot_offset=base - 22200))
    inventories = Path(tempfile.mkdtemp(prefix="bench-reload-inv-"))
    try:
        timed([INVOKE, "provision-all"], env=box.env())
        deploy = [INVOKE, "deploy", "--slot", str(SLOT), "--branch", "main", "--task", "JA-4"]
        timed(deploy, env=box.env())
        handed = series(box, inventories, "handover")
        current = box.hosts[0].root / f"srv/staging/staging-{SLOT}/current"
        (current / ".ok").unlink()  # never verified: restarted in place
        in_place = series(box, inventories, "inplace")
    finally:
        sandbox.down(directory)
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(inventories, ignore_errors=True)
    body = f"""
`bench/bench_provision_reload.py`: `invoke provision-all --slots {SLOT}` after the slot's
`[app.env]` changed (a new value each run), the sample app deployed, under two probes through
nginx (`/api/version` and `/airflow/health`, ~50 requests/s each, and 2 s after); {RUNS} runs
each. The gap is from the last answer before a failure to the first after it, on either path.

| env taken by | provision-all, median (runs) | failed / and /airflow | longest gap | target |
|---|---|---|---|---|
{row("hand-over (live release verified)", handed, "0 / 0, no gap")}
{row("restart in place (live release never verified)", in_place, "says how long")}

The restart in place is what every changed deployed slot got before provision-all used the
deploy's hand-over (the sample app starts in ~0.1 s; the real Airflow 2 webserver took ~38 s).
"""
    update_section("provision-all with a changed env (sandbox, sample app)", body)
    print(body)


if __name__ == "__main__":
    main()
