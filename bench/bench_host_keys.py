"""What checking host keys and reading the ssh config cost (issue #22: <= 20 ms on a no-op
provision-all), and commands through a jump host.

    python -m bench.bench_host_keys [--base DIR]

--base DIR: a checkout of the code before the check (e.g. `git archive <commit> | tar -x -C
DIR`); its no-op provision-all is timed alternately with this checkout's, on the same
sandbox, same inventory (the old code ignores `known_hosts`)."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.results import INVOKE, ROOT, update_section
from devtools import envfile, sandbox

RUNS = 21


def _noop(box: sandbox.Sandbox, root: Path | None, first: bool = False) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one whole no-op provision-all."""
    env = {**os.environ, **box.env()}
    if root is not None:
        env["PYTHONPATH"] = str(root)
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [INVOKE, "provision-all", "--json"],
        cwd=root or ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0 or not (first or '"changed": 0' in result.stdout):
        raise SystemExit(f"provision-all ({root or 'this checkout'}): {result.stderr[-400:]}")
    return elapsed, (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)


CONNECTS = """
import statistics, sys, time
from staging_ops.inventory import load_inventory
from staging_ops.remote import connect
host = load_inventory(sys.argv[1]).hosts["h1"]
times = []
for _ in range(40):
    start = time.perf_counter()
    session = connect(host)
    times.append(time.perf_counter() - start)
    session.close()
print(statistics.median(times[5:]))
"""


def _connect(box: sandbox.Sandbox, root: Path | None) -> float:
    """Median seconds of `connect()` (TCP, key exchange, host key check, login), warm, in one
    process of the given checkout."""
    env = {**os.environ, **box.env()}
    if root is not None:
        env["PYTHONPATH"] = str(root)
    out = subprocess.run(
        [sys.executable, "-c", CONNECTS, str(box.inventory_path)],
        cwd=root or ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out)


def _per_connection(box: sandbox.Sandbox, directory: Path) -> tuple[float, float, float]:
    """In-process microseconds of what connect() now adds before opening a socket: the ssh
    config lookup and route (route.py), the known_hosts lookup; then the first (uncached) read
    of a 2000-line hashed known_hosts, and a lookup in it once cached."""
    from staging_ops.inventory import load_inventory
    from staging_ops.remote.known_hosts import known_keys
    from staging_ops.remote.route import route

    host = load_inventory(box.inventory_path).hosts["h1"]
    rounds = 2000
    start = time.perf_counter()
    for _ in range(rounds):
        hop = route(host).target
        hop.expect.known()
    per_route = (time.perf_counter() - start) / rounds * 1e6
    big = directory / "known_hosts_big"
    key = " ".join((box.path / "keys" / "ssh_host_ed25519_key.pub").read_text().split()[:2])
    big.write_text("".join(f"[10.1.{i // 250}.{i % 250}]:22 {key}\n" for i in range(2000)))
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(big)], check=True, capture_output=True)
    start = time.perf_counter()
    assert known_keys(big, "[10.1.7.249]:22")
    first = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    known_keys(big, "[10.1.7.249]:22")
    cached = (time.perf_counter() - start) * 1e3
    return per_route, first, cached


def _through_a_jump(box: sandbox.Sandbox, directory: Path) -> dict[str, float]:
    """Median seconds per `true` through a bastion sshd on loopback (its own key), with and
    without our socket acknowledging at once; and direct, for comparison."""
    from staging_ops import remote
    from staging_ops.inventory import load_inventory
    from staging_ops.remote import connection

    key = directory / "bastion_key"
    envfile.ssh_keygen(key, "bench-bastion", "bench")
    port = box.hosts[0].ssh_port + 50
    text = (Path(box.hosts[0].dir) / "sshd_config").read_text()
    lines = [
        f"Port {port}"
        if x.startswith("Port ")
        else f"HostKey {key}"
        if x.startswith("HostKey ")
        else f"PidFile {directory / 'bastion.pid'}"
        if x.startswith("PidFile ")
        else x
        for x in text.splitlines()
    ]
    (directory / "bastion_config").write_text("\n".join(lines) + "\n")
    subprocess.run(
        ["/usr/sbin/sshd", "-f", str(directory / "bastion_config"), "-E", "/dev/null"],
        check=True,
    )
    pid = int(envfile_wait(directory / "bastion.pid"))
    try:
        bastion_key = " ".join(key.with_suffix(".pub").read_text().split()[:2])
        with box.known_hosts_path.open("a") as known:
            known.write(f"[127.0.0.1]:{port} {bastion_key}\n")
        config = directory / "ssh_config"
        config.write_text(
            f"Host h1\n  HostName 127.0.0.1\n  ProxyJump root@127.0.0.1:{port}\n"
            "Host 127.0.0.1\n"
            f"  IdentityFile {box.key_path}\n  IdentitiesOnly yes\n"
        )
        base = load_inventory(box.inventory_path).hosts["h1"]
        behind = replace(base, address="h1")
        routes = {"direct": (base, ""), "jump": (behind, str(config))}
        result = {}
        quick = connection._QuickAck
        for label, (host, ssh_config), quickack in (
            ("direct", routes["direct"], True),
            ("jump, our socket acknowledging at once", routes["jump"], True),
            ("jump, plain socket (Nagle off only)", routes["jump"], False),
        ):
            os.environ["STAGING_SSH_CONFIG"] = ssh_config or str(directory / "none")
            (directory / "none").write_text("")
            connection._QuickAck = quick if quickack else (lambda sock: sock)
            session = remote.connect(host)
            try:
                times = []
                for _ in range(40):
                    start = time.perf_counter()
                    session.run("true")
                    times.append(time.perf_counter() - start)
            finally:
                session.close()
            result[label] = statistics.median(times)
        connection._QuickAck = quick
        return result
    finally:
        os.kill(pid, 15)


def envfile_wait(path: Path) -> str:
    deadline = time.monotonic() + 5
    while not (path.exists() and path.read_text().strip()):
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} did not appear")
        time.sleep(0.01)
    return path.read_text()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", type=Path, help="a checkout of the code before the check")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-hostkeys-"))
    directory.chmod(0o755)
    box = sandbox.up(directory, ports=sandbox.Ports(base=24600, slot_offset=2100))
    try:
        _noop(box, None, first=True)  # provisions
        before, after, connects_before, connects_after = [], [], [], []
        for _ in range(RUNS):
            if args.base:
                before.append(_noop(box, args.base))
            after.append(_noop(box, None))
        for _ in range(3):
            if args.base:
                connects_before.append(_connect(box, args.base))
            connects_after.append(_connect(box, None))
        per_route, first, cached = _per_connection(box, directory)
        jump = _through_a_jump(box, directory)
    finally:
        sandbox.down(directory)
        shutil.rmtree(directory, ignore_errors=True)

    def runs(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    def row(label: str, pairs: list[tuple[float, float]]) -> str:
        walls, cpus = [p[0] for p in pairs], [p[1] for p in pairs]
        return (
            f"| {label} | {statistics.median(walls):.3f} s | {statistics.median(cpus):.3f} s "
            f"| {runs(walls)} |"
        )

    rows = []
    if before:
        rows.append(row("before (no check, no ssh config)", before))
    rows.append(row("host key checked, ssh config read", after))
    delta = ""
    if before:
        wall = 1000 * (
            statistics.median(p[0] for p in after) - statistics.median(p[0] for p in before)
        )
        cpu = 1000 * (
            statistics.median(p[1] for p in after) - statistics.median(p[1] for p in before)
        )
        connect = 1000 * (statistics.median(connects_after) - statistics.median(connects_before))
        delta = (
            f"Difference of the medians: wall {wall:+.0f} ms, CPU {cpu:+.0f} ms (target <= 20 "
            "ms); runs alternate before/after on one sandbox (10 slots, 1 host). `connect()` "
            f"alone, warm, in process (median of 35, 3 processes each): before "
            f"{1000 * statistics.median(connects_before):.1f} ms, after "
            f"{1000 * statistics.median(connects_after):.1f} ms ({connect:+.1f} ms).\n\n"
        )
    load = os.getloadavg()[0]
    body = f"""Whole `invoke provision-all --json` processes (no-op), {RUNS} of each; load average
{load:.1f} on {os.cpu_count()} cores at the end (other test runs share the machine: the wall
times scatter, the CPU times less).

| no-op provision-all | median wall | median CPU | runs, wall (s) |
|---|---|---|---|
{chr(10).join(rows)}

{delta}In process, what `connect()` adds per host before its socket opens: the ssh config lookup, the route and the known_hosts lookup {per_route:.0f} µs; a 2000-line hashed known_hosts: first read and lookup {first:.1f} ms, then {cached:.3f} ms (cached per process and file version).

Per command (`true`, median of 40) on one connection:

| route | per command |
|---|---|
{chr(10).join(f"| {label} | {seconds * 1000:.1f} ms |" for label, seconds in jump.items())}
"""  # noqa: E501
    update_section("Host keys and the ssh config", body)
    print(body)


if __name__ == "__main__":
    main()
