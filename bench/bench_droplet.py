"""The toolkit against a real local droplet (Debian 12, systemd as PID 1, systemd-nspawn via
devtools.droplet), whole `invoke` processes: droplet up/down (3 cycles), the first
provision-all split into apt and the rest (2 fresh droplets), the no-op provision-all (5),
redeploys through nginx (5), and reboot until `invoke verify` passes (3). Run as root."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import devtools.droplet as droplet_mod
from bench.results import INVOKE, RESULTS, ROOT, timed, update_section
from devtools.droplet import base, network

TITLE = "Real droplet (systemd-nspawn, Debian 12)"
CYCLES, FIRSTS, RUNS, REBOOTS = 3, 2, 5, 3


@contextmanager
def fresh_droplet(acme: str = "") -> Iterator[tuple[droplet_mod.Droplet, float]]:
    """A droplet in a fresh 0755 temp dir and the seconds `up` took; always down and removed.
    `acme="pebble"`: with its local ACME server, so provision-all obtains real certificates."""
    directory = Path(tempfile.mkdtemp(prefix="bench-droplet-"))
    directory.chmod(0o755)  # the postgres OS user traverses it
    try:
        start = time.perf_counter()
        box = droplet_mod.up(directory, name="bench", acme=acme)
        yield box, time.perf_counter() - start
    finally:
        droplet_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)


def _invoke(box: droplet_mod.Droplet, *args: str) -> tuple[float, str]:
    return timed([INVOKE, *args], env=box.env())


def provision_json(
    box: droplet_mod.Droplet, env: dict[str, str] | None = None
) -> tuple[float, dict]:
    """Seconds of one whole `invoke provision-all --json` (extra `env` on top of the box's)
    and its report; a failed run ends the bench."""
    elapsed, out = timed([INVOKE, "provision-all", "--json"], env={**box.env(), **(env or {})})
    report = json.loads(out)
    assert not report["failed"], report
    return elapsed, report


def _until_verified(box: droplet_mod.Droplet, timeout: float = 120) -> tuple[float, int]:
    """Seconds until `invoke verify --slot 4` exits 0, and how many tries it took."""
    start, tries = time.perf_counter(), 0
    while True:
        tries += 1
        result = subprocess.run(
            [INVOKE, "verify", "--slot", "4"],
            cwd=ROOT,
            env={**os.environ, **box.env()},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return time.perf_counter() - start, tries
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"verify --slot 4 still failing after reboot: {result.stderr[-500:]}")
        time.sleep(0.1)


def _timed_down(box: droplet_mod.Droplet) -> float:
    start = time.perf_counter()
    droplet_mod.down(box.dir)
    return time.perf_counter() - start


def _cache_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _place_beside_sandbox() -> None:
    """A new section goes right after `## Sandbox`; update_section then fills it in place."""
    lines = RESULTS.read_text().split("\n")
    if f"## {TITLE}" in lines or "## Sandbox" not in lines:
        return
    start = lines.index("## Sandbox")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    lines[end:end] = [f"## {TITLE}", ""]
    RESULTS.write_text("\n".join(lines))


def main() -> None:
    build: float | None = None
    if base.cached_base() is None:
        with fresh_droplet() as (_, build):
            pass
    ups: list[float] = []
    downs: list[float] = []
    for _ in range(CYCLES):
        with fresh_droplet() as (box, elapsed):
            ups.append(elapsed)
            downs.append(_timed_down(box))
    apts: list[float] = []
    rests: list[float] = []
    noops: list[float] = []
    deploys: list[float] = []
    reboots: list[float] = []
    readies: list[float] = []
    commands: list[int] = []
    uploads: list[int] = []
    tries: list[int] = []
    cache_before, caches = _cache_mb(network.PROXY_CACHE), set[str]()
    for n in range(FIRSTS):
        with fresh_droplet() as (box, _):
            caches.add(box.proxy_cache)
            elapsed, report = provision_json(box)
            steps = {s["step"]: s for s in report["hosts"][0]["steps"]}
            assert steps["install packages"]["outcome"] == "changed", steps
            apts.append(steps["install packages"]["seconds"])
            rests.append(elapsed - apts[-1])
            if n < FIRSTS - 1:
                continue
            for _ in range(RUNS):
                elapsed, report = provision_json(box)
                assert report["changed"] == 0, report
                noops.append(elapsed)
                commands.append(report["hosts"][0]["commands"])
                uploads.append(report["hosts"][0]["uploads"])
            first = _invoke(box, "deploy", "--slot", "4", "--branch", "feat-x", "--task", "JA-1")
            for i in range(RUNS):
                branch = ("main", "feat-x")[i % 2]
                args = ("deploy", "--slot", "4", "--branch", branch, "--task", "JA-1")
                deploys.append(_invoke(box, *args)[0])
            for _ in range(REBOOTS):
                reboots.append(droplet_mod.reboot(box))
                ready, attempts = _until_verified(box)
                readies.append(ready)
                tries.append(attempts)
    grown = _cache_mb(network.PROXY_CACHE) - cache_before
    shared = caches == {str(network.PROXY_CACHE)}
    cache_note = (
        f"{network.PROXY_CACHE}, warm on this machine: it grew {grown:.1f} MB during this run"
        if shared  # else another apt-cacher-ng held the shared cache
        else f"NOT the warm shared {network.PROXY_CACHE}, which another apt-cacher-ng held:"
        " each droplet had a cold cache of its own, so apt fetched every package from the mirror"
    )
    totals = [a + r for a, r in zip(apts, rests, strict=True)]
    figures: list[tuple[str, list[float], str]] = [
        (
            "droplet up (cached base)",
            ups,
            "`up`: bridge, apt-cacher-ng, registry PostgreSQL, overlay, boot until settled, SSH",
        ),
        (
            "droplet down",
            downs,
            "`down`: stop the container, unmount, cgroups, bridge, apt proxy, PostgreSQL",
        ),
        (
            "first provision-all, total",
            totals,
            "whole `invoke provision-all --json` on a fresh droplet (no package lists yet)",
        ),
        (
            "- of which apt (install packages)",
            apts,
            "that step's own seconds: apt-get update + install nginx postgresql git python3-venv",
        ),
        (
            "- the rest",
            rests,
            "total minus apt: facts, user, dirs, vhosts, units, env files, 10 databases, registry",
        ),
        (
            "no-op provision-all",
            noops,
            f"whole process, provisioned droplet: commands {sorted(set(commands))}, "
            f"uploads {sorted(set(uploads))}",
        ),
        (
            "redeploy slot 4, main / feat-x alternating",
            deploys,
            f"whole `invoke deploy` until verified through nginx (first deploy {first[0]:.2f} s)",
        ),
        (
            "reboot with slot 4 deployed",
            reboots,
            "`reboot()`: `systemctl reboot` until the new boot has settled and SSH answers",
        ),
        (
            "then until `invoke verify --slot 4` passes",
            readies,
            f"from reboot's return until verify exits 0, whole processes (tries {tries})",
        ),
    ]
    rows = [
        f"| {measure} | {statistics.median(values):.2f} s | {len(values)} | "
        f"{', '.join(f'{v:.2f}' for v in values)} | {includes} |"
        for measure, values, includes in figures
    ]
    if build is not None:
        rows.insert(0, f"| base build (first up) | {build:.2f} s | 1 | - | debootstrap, then up |")
    body = (
        "A fresh Debian 12 (bookworm) booted by `devtools.droplet` in systemd-nspawn, systemd as"
        " PID 1, reached over SSH at its own address; registry PostgreSQL on 127.0.0.1. apt goes"
        f" through the local apt-cacher-ng cache ({cache_note}). Each first provision-all is on"
        " a new droplet; the later rows are on the last of them.\n\n"
        "| measure | median | runs | all runs (s) | includes |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    _place_beside_sandbox()
    update_section(TITLE, body)
    print(body)


if __name__ == "__main__":
    main()
