"""`invoke sandbox.*`: the local sandbox droplet (sshd, PostgreSQL, nginx, the systemctl
stand-in, the app's git repository). Dev tooling: tasks.py adds it when the checkout has
devtools."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from invoke import Exit, task

from devtools.task_output import print_processes, print_started
from staging_ops import output
from staging_ops.cli.common import operator_errors


@task(
    name="up",
    help={
        "dir": "sandbox directory (default .sandbox)",
        "hosts": "number of sandbox droplets to start (default 1)",
        "slots": "number of slots in the generated inventory (default 10)",
        "port_base": "first of the sandbox's own ports (ssh, nginx, postgres; default 22200)",
        "slot_port_offset": "added to every slot's UI and Airflow port (default 0)",
        "json": "print the sandbox's status as JSON",
    },
)
@operator_errors
def sandbox_up(
    c, dir=".sandbox", hosts="1", slots="10", port_base="22200", slot_port_offset="0", json=False
):
    """Start the local sandbox droplet (sshd, PostgreSQL, nginx, systemctl stand-in, git repo)."""
    from devtools import sandbox
    from staging_ops import parsing

    # Bounds that leave every derived port (base + 80, slot ports + offset) below 65536.
    ports = sandbox.Ports(
        parsing.integer(port_base, "--port-base", low=1024, high=65000),
        parsing.integer(slot_port_offset, "--slot-port-offset", low=0, high=40000),
    )
    counts = {
        "hosts": parsing.integer(hosts, "--hosts", low=1, high=20),
        "slots": parsing.integer(slots, "--slots", low=1, high=500),
    }
    started = output.StepLog(quiet=json)
    with started.step("sandbox up"):
        box = sandbox.up(dir, **counts, ports=ports, dashboard=True)
    print_started(json, lambda: sandbox.status(dir), _reach(box), box.env_path)


def _reach(box: Any) -> Iterator[str]:
    for host in box.hosts:
        yield f"{host.name}: ssh 127.0.0.1:{host.ssh_port}, https 127.0.0.1:{host.https_port}"
    yield f"postgres 127.0.0.1:{box.pg_port}, repo {box.repo_path}"
    yield f"dashboard {box.dashboard_env()['STAGING_DASHBOARD_URL']} (token: invoke api.token)"


@task(name="down", help={"dir": "sandbox directory (default .sandbox)"})
@operator_errors
def sandbox_down(c, dir=".sandbox"):
    """Stop every process the sandbox started."""
    from devtools import sandbox

    log = output.StepLog()
    with log.step("sandbox down") as step:
        stopped = sandbox.down(dir)
        step.detail = (
            f"stopped {len(stopped)}: {', '.join(stopped)}" if stopped else "nothing running"
        )


@task(name="status", help={"dir": "sandbox directory (default .sandbox)", "json": "print as JSON"})
@operator_errors
def sandbox_status(c, dir=".sandbox", json=False):
    """Show which sandbox processes run and where they listen."""
    from devtools import sandbox

    state = sandbox.status(dir)
    if json:
        print(output.to_json(state))
        return
    print(f"sandbox {state['dir']}: {'up' if state['up'] else 'down'}")
    print_processes(state)
    for host in state.get("hosts", []):
        units = ", ".join(host["units"]) or "no units running"
        print(f"  {host['name']}: ssh {host['ssh']}, https {host['https']}; {units}")
    if not state["up"]:
        raise Exit(code=1)
