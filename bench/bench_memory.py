"""The memory admission's cost on the sandbox: the `memory check` step of a redeploy (one remote
command, slot-instances.sh, plus the decision; median of 5), status's one command per host with
and without slot-instances.sh (interleaved over one SSH connection: what status adds), and
`invoke status` with it (target <= 0.8 s, as bench_claims). Writes its own section of RESULTS.md.

STAGING_BENCH_PORT_BASE moves the sandbox's ports (default 24800)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.results import INVOKE, timed, update_section
from devtools import sandbox
from devtools.deploys import run_deploy
from devtools.sample_repo import push_branch
from staging_ops import remote
from staging_ops.inventory import load_inventory
from staging_ops.remote.memory import memory_command
from staging_ops.remote.scripts import script_command
from staging_ops.slot_layout import SlotPaths

RUNS = 5


def _step_seconds(box: sandbox.Sandbox, slot: int, branch: str, step: str) -> float:
    done = run_deploy(box.env(), slot, branch, "--json", timeout=600)
    done.check_returncode()
    return next(s["seconds"] for s in json.loads(done.stdout)["steps"] if s["step"] == step)


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    directory.chmod(0o755)
    base = int(os.environ.get("STAGING_BENCH_PORT_BASE", "24800"))
    box = sandbox.up(directory, ports=sandbox.Ports(base=base, slot_offset=base - 22200))
    try:
        timed([INVOKE, "provision-all"], env=box.env())
        for slot in (3, 4):
            push_branch(box.repo_path, "bench", {"BENCH.txt": "0\n"})
            _step_seconds(box, slot, "bench", "memory check")
        checks = []
        for i in range(RUNS):
            push_branch(box.repo_path, "bench", {"BENCH.txt": f"{i + 1}\n"})
            checks.append(_step_seconds(box, 4, "bench", "memory check"))
        inventory = load_inventory(box.inventory_path)
        host = inventory.hosts["h1"]
        dirs = [SlotPaths(host, s).root for s in inventory.slots_on(host)]
        links = [SlotPaths(host, s).current for s in inventory.slots_on(host)]
        live = script_command("status-live.sh", *links)
        session = remote.connect(host)
        try:
            session.run("true")  # the connection's own set-up is not the script's
            # Interleaved, so both see the same load: status's command before and after.
            before, after = [], []
            both = f"{live} && {memory_command(dirs)}"
            for _ in range(RUNS):
                for command, times in ((live, before), (both, after)):
                    start = time.perf_counter()
                    session.run(command)
                    times.append(time.perf_counter() - start)
        finally:
            session.close()
        status = [timed([INVOKE, "status"], env=box.env())[0] for _ in range(RUNS)]
    finally:
        sandbox.down(directory)
        shutil.rmtree(directory, ignore_errors=True)
    body = f"""Sandbox, slots 3 and 4 running the sample app; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.

| measure | median of {RUNS} | all runs (s) | target |
|---|---|---|---|
| `memory check` step of a redeploy (one remote command + the decision) | {statistics.median(checks):.3f} s | {_fmt(checks)} | - |
| status's command for a host's {len(dirs)} slots over an open SSH connection, before: status-live.sh | {statistics.median(before):.3f} s | {_fmt(before)} | - |
| the same, now: status-live.sh + slot-instances.sh | {statistics.median(after):.3f} s | {_fmt(after)} | - |
| `invoke status` (its one command per host now reads memory too) | {statistics.median(status):.2f} s | {_fmt(status)} | <= 0.8 s |
"""  # noqa: E501
    update_section("memory admission", body)
    print(body)


if __name__ == "__main__":
    main()
