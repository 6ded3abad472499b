"""The sandbox's PostgreSQL cluster (shared by all its hosts), also the droplet's registry."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from devtools.envfile import REGISTRY_DB
from devtools.sandbox import processes
from devtools.sandbox.state import Sandbox
from staging_ops.errors import StagingError


def server_bin() -> Path:
    """The newest installed PostgreSQL server's bin directory (Debian layout)."""
    versions = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if not versions:
        raise StagingError(
            "sandbox: no PostgreSQL server found in /usr/lib/postgresql (run scripts/setup.sh)"
        )
    return max(versions, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


def start(sandbox: Sandbox) -> None:
    def record(pid: int) -> None:
        sandbox.pids["postgres"] = pid
        sandbox.save()

    start_postgres(
        sandbox.path / "pg",
        sandbox.pg_port,
        on_started=record,
        starting=lambda args: processes.sandbox_command(sandbox, args),
    )


def start_postgres(
    pg: Path,
    port: int,
    on_started: Callable[[int], None] | None = None,
    starting: Callable[[list[str]], list[str]] = list,
) -> int:
    """A PostgreSQL cluster in `pg` (data/, run/ for its socket, postgres.log) on
    127.0.0.1:`port`, with the registry database; returns the postmaster's PID, which
    `on_started` also gets as soon as it runs (so a caller can record it before the database
    is created, and stop it if that fails). Run as the `postgres` OS user when we are root;
    `starting` wraps the command that starts the server (the sandbox's: into its cgroup).
    Also used by devtools.droplet for its registry."""
    pg_bin = server_bin()
    data, run = pg / "data", pg / "run"
    run.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(pg, "postgres", "postgres")
        shutil.chown(run, "postgres", "postgres")
        ensure_traversable(pg)
    processes.run(
        processes.as_postgres(
            [
                str(pg_bin / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ]
        )
    )
    # The superuser is trusted on loopback (the sandbox's stand-in for the droplet's admin
    # access); every slot role must present its password, as on the real droplet.
    hba = data / "pg_hba.conf"
    hba.write_text(
        "local all all trust\n"
        "host all postgres 127.0.0.1/32 trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
    )
    options = (
        f"-k {run} -p {port} -c listen_addresses=127.0.0.1 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c max_connections=200"
    )
    processes.run(
        starting(
            processes.as_postgres(
                [
                    str(pg_bin / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(pg / "postgres.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "30",
                    "start",
                ]
            )
        )
    )
    pid = int((data / "postmaster.pid").read_text().split()[0])
    if on_started:
        on_started(pid)
    processes.run(
        [
            "psql",
            "-h",
            str(run),
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-qc",
            f"CREATE DATABASE {REGISTRY_DB}",
        ]
    )
    return pid


def ensure_traversable(path: Path) -> None:
    """The postgres user must be able to reach its data directory through our parents."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            raise StagingError(
                f"sandbox: {parent} is not traversable by the postgres user "
                "(chmod o+x it or choose another --dir)"
            )
