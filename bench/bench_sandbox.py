"""Sandbox up/down wall time, whole `invoke` processes, median of 5 (targets: up <= 10 s,
down <= 3 s). Uses its own directory and ports; never touches a running demo sandbox."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench.results import INVOKE, timed, update_section

RUNS = 5


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    directory.chmod(0o755)
    args = ["--dir", str(directory), "--port-base", "24200", "--slot-port-offset", "1500"]
    ups, downs = [], []
    try:
        for _ in range(RUNS):
            ups.append(timed([INVOKE, "sandbox.up", *args])[0])
            downs.append(timed([INVOKE, "sandbox.down", "--dir", str(directory)])[0])
    finally:
        timed([INVOKE, "sandbox.down", "--dir", str(directory)])
        shutil.rmtree(directory, ignore_errors=True)
    up = sorted(ups)[len(ups) // 2]
    down = sorted(downs)[len(downs) // 2]
    body = f"""| measure | median of {RUNS} | all runs | target |
|---|---|---|---|
| `invoke sandbox.up` | {up:.2f} s | {", ".join(f"{x:.2f}" for x in ups)} | <= 10 s |
| `invoke sandbox.down` | {down:.2f} s | {", ".join(f"{x:.2f}" for x in downs)} | <= 3 s |
"""
    update_section("Sandbox", body)
    print(body)


if __name__ == "__main__":
    main()
