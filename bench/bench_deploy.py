"""Deploy speed on the sandbox, whole `invoke deploy` processes until verified (targets):
redeploy of a new commit with unchanged requirements <= 2.5 s (median of 5, with the
candidate hand-over); first deploy with a venv build <= 20 s; ten slots deployed at once
<= 15 s in all; a second deploy to a locked slot exits 3 within 1 s. Every redeploy and two
broken ones run under a probe through nginx (devtools/probe.py, ~50 requests a second, and
2 s after): failed requests and answers from a broken release must stay 0.

STAGING_BENCH_PORT_BASE moves the sandbox's ports (default 24600)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.results import INVOKE, ROOT, timed, update_section
from devtools import sandbox
from devtools.deploys import deploy_args
from devtools.probe import Probe
from devtools.sample_repo import WRONG_COMMIT, push_branch, resolve
from staging_ops.inventory import load_inventory

RUNS = 5


def _deploy(box: sandbox.Sandbox, slot: int, branch: str) -> float:
    args = [INVOKE, *deploy_args(slot, branch)]
    if branch.startswith("broken"):  # must fail (exit 1), on the candidate
        done = subprocess.run(
            args,
            cwd=ROOT,
            env={**os.environ, **box.env()},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 1 and "candidate verify failed" in done.stderr, done.stderr
        return 0.0
    return timed(args, env=box.env())[0]


def _probed(box: sandbox.Sandbox, slot: int, branch: str) -> tuple[float, int, int]:
    """(seconds, failed requests, answers from a broken release) of one deploy under a probe."""
    inventory = load_inventory(box.inventory_path)
    chosen = inventory.slots[slot]
    with Probe(inventory.host_of(chosen), chosen) as watch:
        seconds = _deploy(box, slot, branch)
        watch.stop(after=2)
    broken = {WRONG_COMMIT} | (
        {resolve(box.repo_path, branch)} if branch.startswith("broken") else set()
    )
    return seconds, watch.failed, sum(1 for a in watch.answers if a in broken)


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    directory.chmod(0o755)
    base = int(os.environ.get("STAGING_BENCH_PORT_BASE", "24600"))
    box = sandbox.up(directory, ports=sandbox.Ports(base=base, slot_offset=base - 22200))
    try:
        timed([INVOKE, "provision-all"], env=box.env())
        # First deploy: builds a venv with pip (requirements with a real package line would
        # need the network; the sample's comment-only file builds a pip-less venv, so force
        # a pip venv by a requirements file that names pip itself).
        push_branch(box.repo_path, "with-pip", {"requirements.txt": "pip\n"})
        first = _deploy(box, 4, "with-pip")
        redeploys, dropped, wrong = [], [], []
        for i in range(RUNS):
            push_branch(box.repo_path, "bench", {"BENCH.txt": f"{i}\n"})
            seconds, failed, _ = _probed(box, 4, "bench")
            redeploys.append(seconds)
            dropped.append(failed)
        for branch in ("broken-version", "broken-500"):
            _, failed, answered = _probed(box, 4, branch)
            dropped.append(failed)
            wrong.append(answered)
        # A locked slot: hold the lock with a running deploy, time the second one.
        push_branch(box.repo_path, "bench", {"BENCH.txt": "locked\n"})
        env = {**os.environ, **box.env()}
        holder = subprocess.Popen(
            [INVOKE, *deploy_args(4, "bench")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        note = box.hosts[0].root / "srv/staging/staging-4/.deploy.lock.json"
        while not note.exists() and holder.poll() is None:
            time.sleep(0.01)
        start = time.perf_counter()
        refused = subprocess.run(
            [INVOKE, *deploy_args(4, "main")],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=False,
        )
        locked = time.perf_counter() - start
        holder.wait()
        assert refused.returncode == 3, refused.stderr
        for n in range(1, 11):
            push_branch(box.repo_path, f"slot-{n}", {"SLOT.txt": f"{n}\n"})
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(lambda n: _deploy(box, n, f"slot-{n}"), range(1, 11)))
        ten = time.perf_counter() - start
    finally:
        sandbox.down(directory)
        shutil.rmtree(directory, ignore_errors=True)
    redeploy = statistics.median(redeploys)
    load = os.getloadavg()[0]
    body = f"""Load average at the end: {load:.1f} on {os.cpu_count()} cores (times are only comparable at a low load).

| measure | result | runs (s) | target |
|---|---|---|---|
| redeploy, new commit, same requirements (until verified, candidate hand-over) | {redeploy:.2f} s median | {", ".join(f"{r:.2f}" for r in redeploys)} | <= 2.5 s |
| failed requests through nginx, per deploy (5 redeploys, then broken-version, broken-500) | {sum(dropped)} in all | {", ".join(map(str, dropped))} | 0 |
| answers from the broken release (broken-version, broken-500) | {sum(wrong)} in all | {", ".join(map(str, wrong))} | 0 |
| first deploy with a venv build (pip) | {first:.2f} s | - | <= 20 s |
| ten slots deployed by ten processes at once | {ten:.2f} s in all | - | <= 15 s |
| second deploy to a locked slot exits 3 | {locked:.2f} s | - | <= 1 s |
"""  # noqa: E501
    update_section("deploy", body)
    print(body)


if __name__ == "__main__":
    main()
