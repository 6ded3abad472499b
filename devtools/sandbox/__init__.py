"""The local sandbox droplet: this machine made to look like a staging droplet, on loopback.

Per host: a real OpenSSH server (generated keys), a real nginx (self-signed *.justapply.net
certificate), and a `systemctl` on the SSH session's PATH backed by docker-systemctl-replacement
with `--root` inside the sandbox, so our real unit files really run. Shared by all hosts: one
PostgreSQL cluster (run as the `postgres` OS user when we are root) and a bare git repository
of examples/sample-app. Everything lives under one directory and listens on 127.0.0.1 only;
`down` stops every process by the PID it recorded, then whatever else runs in the
sandbox's cgroup (devtools/cgroups.py), whatever it renamed itself to.

One module a job: state (what a sandbox is, state.json), lifecycle (up/down/status),
processes (running commands, which PIDs are ours), stopping, postgres, sshd, host_root (a
host's root, nginx, systemctl wrappers), api_server (the dashboard), inventory
(DIR/inventory.toml and DIR/env).
"""

from __future__ import annotations

from devtools.envfile import REGISTRY_DB, STATE_FILE
from devtools.sandbox import stopping
from devtools.sandbox.api_server import PROJECT
from devtools.sandbox.host_root import SYSTEMCTL
from devtools.sandbox.lifecycle import down, status, up
from devtools.sandbox.postgres import start_postgres
from devtools.sandbox.processes import alive as _alive  # the name tests know it by
from devtools.sandbox.sshd import SANDBOX_PATH
from devtools.sandbox.state import SERVICE_USER, Ports, Sandbox, SandboxHost, load
from staging_ops.errors import BadInput, StagingError

__all__ = [
    "PROJECT",
    "REGISTRY_DB",
    "SANDBOX_PATH",
    "SERVICE_USER",
    "STATE_FILE",
    "SYSTEMCTL",
    "BadInput",
    "Ports",
    "Sandbox",
    "SandboxHost",
    "StagingError",
    "_alive",
    "down",
    "load",
    "start_postgres",
    "status",
    "stopping",
    "up",
]
