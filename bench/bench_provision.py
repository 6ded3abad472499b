"""provision-all speed on the sandbox, whole `invoke` processes (issue targets):
no-op re-run, 10 slots <= 0.8 s with <= 3 remote commands per host and 0 uploads; first run,
10 slots <= 2.5 s; no-op for 100 slots over 4 hosts <= 2x the 10-slot no-op."""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
from pathlib import Path

from bench.results import INVOKE, timed, update_section
from devtools import sandbox

RUNS = 5


def _box(hosts: int, slots: int) -> tuple[Path, sandbox.Sandbox]:
    directory = Path(tempfile.mkdtemp(prefix="bench-provision-"))
    directory.chmod(0o755)
    return directory, sandbox.up(
        directory, hosts=hosts, slots=slots, ports=sandbox.Ports(base=24400, slot_offset=1600)
    )


def _provision(box: sandbox.Sandbox) -> tuple[float, dict]:
    elapsed, out = timed([INVOKE, "provision-all", "--json"], env=box.env())
    return elapsed, json.loads(out)


def main() -> None:
    firsts, noops, commands, uploads = [], [], set(), set()
    for _ in range(RUNS):
        directory, box = _box(1, 10)
        try:
            firsts.append(_provision(box)[0])
            for _ in range(RUNS if not noops else 1):
                elapsed, report = _provision(box)
                assert report["changed"] == 0, report
                noops.append(elapsed)
                commands |= {h["commands"] for h in report["hosts"]}
                uploads |= {h["uploads"] for h in report["hosts"]}
        finally:
            sandbox.down(directory)
            shutil.rmtree(directory, ignore_errors=True)
    directory, box = _box(4, 100)
    try:
        _provision(box)
        big = []
        for _ in range(RUNS):
            elapsed, report = _provision(box)
            assert report["changed"] == 0, report
            big.append(elapsed)
        big_commands = {h["commands"] for h in report["hosts"]}
    finally:
        sandbox.down(directory)
        shutil.rmtree(directory, ignore_errors=True)
    first, noop, large = (statistics.median(x) for x in (firsts, noops, big))

    def runs(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    body = f"""| measure | median | runs (s) | remote commands per host | target |
|---|---|---|---|---|
| no-op re-run, 10 slots, 1 host | {noop:.2f} s | {runs(noops)} | {sorted(commands)} (uploads {sorted(uploads)}) | <= 0.8 s, <= 3 commands, 0 uploads |
| first run, 10 slots (creates 10 databases) | {first:.2f} s | {runs(firsts)} | 3 | <= 2.5 s |
| no-op re-run, 100 slots over 4 hosts | {large:.2f} s ({large / noop:.1f}x) | {runs(big)} | {sorted(big_commands)} | <= 2x the 10-slot no-op |
"""  # noqa: E501
    update_section("provision-all", body)
    print(body)


if __name__ == "__main__":
    main()
