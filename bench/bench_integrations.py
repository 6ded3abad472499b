"""A deploy's speed with GitHub and Linear told (issue 24: a failing or unreachable service
never delays a deploy): whole `invoke deploy` processes of slot 4, main and feat-x
alternating, median of 5, with the integrations off (no tokens), on (both local stand-ins up),
GitHub down (nothing listens on its port: refused at once), and GitHub hanging (a socket that
accepts and never answers: every request waits for the read timeout; the CLI waits for its
delivery thread at most EXIT_WAIT seconds at exit).

STAGING_BENCH_PORT_BASE moves the sandbox's ports (default 24800)."""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import tempfile
from pathlib import Path

from bench.results import INVOKE, timed, update_section
from devtools import sandbox
from devtools.standins import GitHubStandIn, LinearStandIn
from staging_ops.integrations.outbox import EXIT_WAIT

RUNS = 5


def _deploys(box: sandbox.Sandbox, env: dict[str, str]) -> list[float]:
    runs = []
    for i in range(RUNS):
        branch = ("main", "feat-x")[i % 2]
        args = [INVOKE, "deploy", "--slot", "4", "--branch", branch, "--task", "JA-4"]
        runs.append(timed(args, env={**box.env(), **env})[0])
    return runs


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
        timed([INVOKE, "deploy", "--slot", "4", "--branch", "main", "--task", "JA-4"], box.env())
        told = {
            "STAGING_GITHUB_TOKEN": "bench-token",
            "STAGING_GITHUB_API_URL": github.start(),
            "STAGING_LINEAR_API_KEY": "bench-key",
            "STAGING_LINEAR_API_URL": linear.start() + linear.path,
        }
        rows = [("off (no tokens)", _deploys(box, {})), ("on, both up", _deploys(box, told))]
        github.stop()
        rows.append(("GitHub down (refused)", _deploys(box, told)))
        hung = {**told, "STAGING_GITHUB_API_URL": f"http://127.0.0.1:{hang.getsockname()[1]}"}
        rows.append(("GitHub hanging (no answer)", _deploys(box, hung)))
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
    update_section(
        "Deploys with GitHub and Linear told",
        "Whole `invoke deploy` of slot 4 (main / feat-x alternating) until verified, events "
        f"delivered by a thread meanwhile; at exit the CLI waits at most {EXIT_WAIT:g} s for "
        "it.\n\n" + "\n".join(lines),
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
