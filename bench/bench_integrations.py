"""A deploy's speed with GitHub and Linear told (issue 24: a failing or unreachable service
never delays a deploy): whole `invoke deploy` processes, main and feat-x alternating,
median of 5, with the integrations off (no tokens), on (both local stand-ins up),
GitHub down (nothing listens on its port: refused at once), and GitHub hanging (a socket that
accepts and never answers: every request waits for the read timeout; the CLI waits for its
delivery thread at most EXIT_WAIT seconds at exit). Whole deploys on a shared machine vary by
seconds, so the hooks' own cost is also measured in-process, under the same conditions: one
`emit` (what a deploy step waits for: the outbox row written) and `settle` (what the CLI
waits for at exit).

STAGING_BENCH_PORT_BASE moves the sandbox's ports (default 24800)."""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path

from bench.results import INVOKE, timed, update_section
from devtools import sandbox
from devtools.deploys import deploy_args
from devtools.standins import GitHubStandIn, LinearStandIn
from staging_ops.integrations import emit, settle
from staging_ops.integrations.events import STARTED, SUCCEEDED, Event
from staging_ops.integrations.outbox import EXIT_WAIT
from staging_ops.registry import PostgresRegistry

RUNS = 5


def _deploys(box: sandbox.Sandbox, env: dict[str, str], slot: int) -> list[float]:
    runs = []
    for i in range(RUNS):
        branch = ("main", "feat-x")[i % 2]
        args = [INVOKE, *deploy_args(slot, branch)]
        runs.append(timed(args, env={**box.env(), **env})[0])
    return runs


def _hooks(dsn: str, env: dict[str, str], slot: int) -> tuple[list[float], float]:
    """Milliseconds of each of 10 emits (5 started and succeeded pairs) and of the wait at exit."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    registry = PostgresRegistry(dsn)
    try:
        emits = []
        for i in range(RUNS):
            commit = f"{slot}{i}".ljust(40, "0")
            for kind in (STARTED, SUCCEEDED):
                event = Event(
                    kind, slot, f"staging-{slot}", "https://s", commit, "main", "JA-9", "o/r"
                )
                start = time.perf_counter()
                emit(registry, event)
                emits.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        settle()
        return emits, (time.perf_counter() - start) * 1000
    finally:
        registry.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-integrations-"))
    directory.chmod(0o755)
    base = int(os.environ.get("STAGING_BENCH_PORT_BASE", "24800"))
    box = sandbox.up(directory, ports=sandbox.Ports(base=base, slot_offset=base - 22200))
    github, linear = GitHubStandIn("bench-token"), LinearStandIn("bench-key")
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)  # accepts (the kernel does), never answers
    try:
        timed([INVOKE, "provision-all"], env=box.env())
        for slot in (4, 5, 6):  # each condition on a slot of its own, each deployed once
            args = [
                INVOKE,
                "deploy",
                "--slot",
                str(slot),
                "--branch",
                "main",
                "--task",
                f"JA-{slot}",
            ]
            timed(args, box.env())
        told = {
            "STAGING_GITHUB_TOKEN": "bench-token",
            "STAGING_GITHUB_API_URL": github.start(),
            "STAGING_LINEAR_API_KEY": "bench-key",
            "STAGING_LINEAR_API_URL": linear.start() + linear.path,
        }
        dsn = box.env()["STAGING_REGISTRY_DSN"]
        hung = {**told, "STAGING_GITHUB_API_URL": f"http://127.0.0.1:{hang.getsockname()[1]}"}
        # A slot's events are told in order: a condition on a slot whose earlier event waits
        # for a retry would measure nothing. Hence a slot per condition.
        hooks = [("on, both up", _hooks(dsn, told, 7))]
        rows = [("off (no tokens)", _deploys(box, {}, 4)), ("on, both up", _deploys(box, told, 4))]
        github.stop()
        hooks.append(("GitHub down (refused)", _hooks(dsn, told, 8)))
        rows.append(("GitHub down (refused)", _deploys(box, told, 5)))
        hooks.append(("GitHub hanging (no answer)", _hooks(dsn, hung, 9)))
        rows.append(("GitHub hanging (no answer)", _deploys(box, hung, 6)))
        github.assert_valid()
        linear.assert_valid()
    finally:
        hang.close()
        linear.stop()
        github.stop()
        sandbox.down(directory)
        shutil.rmtree(directory, ignore_errors=True)
    lines = [
        "| integrations | median of 5 | all runs (s) |",
        "|---|---|---|",
        *(
            f"| {name} | {statistics.median(r):.2f} s | {', '.join(f'{x:.2f}' for x in r)} |"
            for name, r in rows
        ),
    ]
    lines += [
        "",
        "| integrations | `emit`, median of 10 | slowest | `settle` at exit |",
        "|---|---|---|---|",
        *(
            f"| {name} | {statistics.median(e):.1f} ms | {max(e):.1f} ms | {s:.0f} ms |"
            for name, (e, s) in hooks
        ),
    ]
    update_section(
        "Deploys with GitHub and Linear told",
        "Whole `invoke deploy` (main / feat-x alternating; slot 4, then 5 and 6) until "
        "verified, events delivered by a thread meanwhile; at exit the CLI waits at most "
        f"{EXIT_WAIT:g} s for it. Load average during the run: {os.getloadavg()[0]:.1f}.\n\n"
        + "\n".join(lines),
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
