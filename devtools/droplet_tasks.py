"""`invoke droplet.*`: a real Debian 12 droplet (systemd, SSH) in systemd-nspawn. Dev
tooling: tasks.py adds it when the checkout has devtools."""

from __future__ import annotations

import sys

from invoke import Exit, task

from devtools.task_output import print_processes, print_started
from staging_ops import output
from staging_ops.cli.common import operator_errors


@task(
    name="up",
    help={
        "dir": "droplet directory (default .droplet); a stale droplet there is replaced",
        "name": "the droplet's host name and inventory host (default d1)",
        "acme": "'pebble': run a local ACME server for the droplet and have provision-all get "
        "its certificates from it (default: none, a self-signed placeholder)",
        "json": "print the droplet's status as JSON (steps still print, to stderr)",
        "repo": "a bare git repository to serve instead of the sample app's (copied; the "
        "inventory's [app] stays the sample app's)",
        "bind": "HOST_DIR:PATH, a host directory mounted read-only in the droplet at PATH "
        "(under /srv, /opt or /mnt), e.g. a wheelhouse for [app] pip_find_links; repeatable",
    },
    iterable=["bind"],
)
@operator_errors
def droplet_up(c, dir=".droplet", name="d1", acme="", json=False, repo="", bind=None):
    """Boot a fresh Debian 12 droplet (systemd, SSH on :22 at its own IP) in systemd-nspawn."""
    from pathlib import Path

    import devtools.droplet as droplet
    from staging_ops.errors import BadInput

    binds = {}
    for item in bind or []:
        host, sep, inside = item.partition(":")
        if not sep or not host or not inside:
            raise BadInput(f"--bind must be HOST_DIR:PATH, not {item!r}")
        binds[Path(host)] = inside
    log = output.StepLog(stream=sys.stderr if json else sys.stdout)
    with log.step("droplet up") as step:
        box = droplet.up(
            dir, name=name, log=log, acme=acme, repo=Path(repo) if repo else None, binds=binds
        )
        step.detail = f"{box.name} at {box.address}"
    reach = [
        f"{box.name}: ssh -i {box.key_path} -o UserKnownHostsFile={box.known_hosts_path} "
        f"root@{box.address}",
        f"postgres 127.0.0.1:{box.pg_port}, repo {box.repo_path} (inside: {box.repo_url})",
        f"apt proxy {box.proxy_url}",
    ]
    print_started(json, lambda: droplet.status(dir), reach, box.env_path)


@task(name="down", help={"dir": "droplet directory (default .droplet)"})
@operator_errors
def droplet_down(c, dir=".droplet"):
    """Stop and remove everything the droplet created (processes, mount, cgroups, bridge)."""
    import devtools.droplet as droplet

    log = output.StepLog()
    with log.step("droplet down") as step:
        stopped = droplet.down(dir)
        step.detail = f"removed: {', '.join(stopped)}" if stopped else "nothing running"


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
        print_processes(state)
    if not state["up"]:
        raise Exit(code=1)
