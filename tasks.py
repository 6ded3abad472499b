"""Operator tasks for the justapply.net staging droplet. `invoke --list` shows them all.

This file stays thin: parse flags, call one staging_ops function, print its result.
Exit codes: 0 done, 1 failed, 2 bad input or configuration, 3 conflict.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import Collection, Exit, task

from staging_ops import inventory as inv
from staging_ops import output, render, sandbox
from staging_ops.errors import StagingError
from staging_ops.registry_doc import DOC_PATH, write_registry_doc

ROOT = Path(__file__).resolve().parent


def operator_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn StagingError into one line on stderr and its exit code; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StagingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise Exit(code=130) from None

    return wrapper


def load(c: Any) -> inv.Inventory:
    config = c.config.get("staging", {}) or {}
    return inv.load_inventory(inv.inventory_path(config.get("inventory")))


@task(
    help={
        "slot": "slot number to render (default: every slot)",
        "out": "write the files under this directory (mirroring remote paths) instead of printing",
    }
)
@operator_errors
def render_(c, slot=None, out=None):
    """Render nginx vhosts, systemd units and env files (secrets redacted)."""
    inventory = load(c)
    slots = [inventory.slot(slot)] if slot is not None else list(inventory.slots.values())
    for host in inventory.target_hosts():
        chosen = [s for s in slots if s.host == host.name]
        if not chosen:
            continue
        files = render.render_host(inventory, host, chosen)
        for path, rendered in files.items():
            if out:
                target = Path(out) / path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(rendered.content)
                target.chmod(rendered.mode)
                print(f"wrote {target}")
            else:
                print(f"# ==> {host.name}:{path} (mode {rendered.mode:04o})")
                print(rendered.content)


@task(name="registry-doc", help={"check": "only report whether the document is out of date"})
@operator_errors
def registry_doc(c, check=False):
    """Write docs/staging-slots.md (the static slot table) from the inventory."""
    inventory = load(c)
    if check:
        from staging_ops.registry_doc import render_registry_doc

        current = DOC_PATH.read_text() if DOC_PATH.exists() else ""
        if current != render_registry_doc(inventory):
            raise StagingError(f"{DOC_PATH} is out of date: run `invoke registry-doc`")
        print(f"{DOC_PATH}: up to date")
        return
    changed = write_registry_doc(inventory)
    print(f"{DOC_PATH}: {'changed' if changed else 'unchanged'}")


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
    c, dir=".sandbox", hosts=1, slots=10, port_base=22200, slot_port_offset=0, json=False
):
    """Start the local sandbox droplet (sshd, PostgreSQL, nginx, systemctl stand-in, git repo)."""
    started = output.StepLog(quiet=json)
    with started.step("sandbox up"):
        box = sandbox.up(
            dir,
            hosts=int(hosts),
            slots=int(slots),
            ports=sandbox.Ports(int(port_base), int(slot_port_offset)),
        )
    if json:
        print(output.to_json(sandbox.status(dir)))
        return
    for host in box.hosts:
        print(f"  {host.name}: ssh 127.0.0.1:{host.ssh_port}, https 127.0.0.1:{host.https_port}")
    print(f"  postgres 127.0.0.1:{box.pg_port}, repo {box.repo_path}")
    print(f"  settings: source {box.env_path}")


@task(name="down", help={"dir": "sandbox directory (default .sandbox)"})
@operator_errors
def sandbox_down(c, dir=".sandbox"):
    """Stop every process the sandbox started."""
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
    state = sandbox.status(dir)
    if json:
        print(output.to_json(state))
        return
    print(f"sandbox {state['dir']}: {'up' if state['up'] else 'down'}")
    for name, alive in state["processes"].items():
        print(f"  {name:<16} {'running' if alive else 'stopped'}")
    for host in state.get("hosts", []):
        units = ", ".join(host["units"]) or "no units running"
        print(f"  {host['name']}: ssh {host['ssh']}, https {host['https']}; {units}")
    if not state["up"]:
        raise Exit(code=1)


ns = Collection()
ns.add_task(render_, name="render")
ns.add_task(registry_doc)
ns.add_collection(Collection("sandbox", sandbox_up, sandbox_down, sandbox_status))
