"""Dev tooling tasks: the local sandbox droplet (`invoke sandbox.*`) and a real Debian 12 droplet
in systemd-nspawn (`invoke droplet.*`). Not part of the product; tasks.py adds them when the
checkout has devtools.
"""

from __future__ import annotations

import sys

from invoke import Collection, Exit, task

from staging_ops import output
from staging_ops.cli.common import operator_errors


def _print_processes(state: dict) -> None:
    for name, alive in state["processes"].items():
        print(f"  {name:<16} {'running' if alive else 'stopped'}")


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
    if json:
        print(output.to_json(sandbox.status(dir)))
        return
    for host in box.hosts:
        print(f"  {host.name}: ssh 127.0.0.1:{host.ssh_port}, https 127.0.0.1:{host.https_port}")
    print(f"  postgres 127.0.0.1:{box.pg_port}, repo {box.repo_path}")
    print(f"  dashboard {box.dashboard_env()['STAGING_DASHBOARD_URL']} (token: invoke api.token)")
    print(f"  settings: source {box.env_path}")


@task(name="down", help={"dir": "sandbox directory (default .sandbox)"})
@operator_errors
def sandbox_down(c, dir=".sandbox"):
    """Stop every process the sandbox started."""
    from devtools import sandbox

    log = output.StepLog()
    with log.step("sandbox down") as step:
        stopped = sandbox.down(dir)
        step["detail"] = (
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
    _print_processes(state)
    for host in state.get("hosts", []):
        units = ", ".join(host["units"]) or "no units running"
        print(f"  {host['name']}: ssh {host['ssh']}, https {host['https']}; {units}")
    if not state["up"]:
        raise Exit(code=1)


@task(
    name="up",
    help={
        "dir": "droplet directory (default .droplet); a stale droplet there is replaced",
        "name": "the droplet's host name and inventory host (default d1)",
        "acme": "'pebble': run a local ACME server for the droplet and have provision-all get "
        "its certificates from it (default: none, a self-signed placeholder)",
        "json": "print the droplet's status as JSON (steps still print, to stderr)",
    },
)
@operator_errors
def droplet_up(c, dir=".droplet", name="d1", acme="", json=False):
    """Boot a fresh Debian 12 droplet (systemd, SSH on :22 at its own IP) in systemd-nspawn."""
    import devtools.droplet as droplet

    log = output.StepLog(stream=sys.stderr if json else sys.stdout)
    with log.step("droplet up") as step:
        box = droplet.up(dir, name=name, log=log, acme=acme)
        step["detail"] = f"{box.name} at {box.address}"
    if json:
        print(output.to_json(droplet.status(dir)))
        return
    print(f"  {box.name}: ssh -i {box.key_path} root@{box.address}")
    print(f"  postgres 127.0.0.1:{box.pg_port}, repo {box.repo_path} (inside: {box.repo_url})")
    print(f"  apt proxy {box.proxy_url}")
    print(f"  settings: source {box.env_path}")


@task(name="down", help={"dir": "droplet directory (default .droplet)"})
@operator_errors
def droplet_down(c, dir=".droplet"):
    """Stop and remove everything the droplet created (processes, mount, cgroups, bridge)."""
    import devtools.droplet as droplet

    log = output.StepLog()
    with log.step("droplet down") as step:
        stopped = droplet.down(dir)
        step["detail"] = f"removed: {', '.join(stopped)}" if stopped else "nothing running"


@task(name="status", help={"dir": "droplet directory (default .droplet)", "json": "print as JSON"})
@operator_errors
def droplet_status(c, dir=".droplet", json=False):
    """Show whether the droplet runs, its systemd state, address and processes."""
    import devtools.droplet as droplet

    state = droplet.status(dir)
    if json:
        print(output.to_json(state))
    else:
        print(f"droplet {state['dir']}: {'up' if state['up'] else 'down'}")
        if "name" in state:
            print(f"  {state['name']}: {state['ssh']}, systemd {state['system']}")
        _print_processes(state)
    if not state["up"]:
        raise Exit(code=1)


sandbox_tasks = Collection("sandbox", sandbox_up, sandbox_down, sandbox_status)
droplet_tasks = Collection("droplet", droplet_up, droplet_down, droplet_status)
