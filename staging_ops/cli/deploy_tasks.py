"""Slot release tasks: deploy, rollback, verify, logs."""

from __future__ import annotations

import sys

from invoke import Exit, task

from staging_ops import output
from staging_ops.cli.common import load, operator, operator_errors, require_slot_credentials
from staging_ops.errors import BadInput


@task(
    help={
        "slot": "slot number to deploy to",
        "branch": "branch of the app repository to deploy",
        "task": "Linear task key the slot is for (default: taken from the branch name)",
        "owner": "who deploys (default: git config user.email, then $USER)",
        "force": "deploy even though another task holds the slot (the claim stays theirs)",
        "json": "print the result as JSON",
    }
)
@operator_errors
def deploy(c, slot="", branch="", task="", owner="", force=False, json=False):
    """Deploy a branch to a slot: verified through /api/version, rolled back if broken."""
    from staging_ops import deploy as deploy_mod
    from staging_ops.registry.from_env import registry_session

    inventory = load(c)
    chosen = inventory.slot(slot)
    if not branch:
        raise BadInput("--branch is required")
    deploy_mod.validate_branch(branch)
    # The deploy verifies the slot through nginx: without its credentials, after the switch.
    require_slot_credentials([inventory.host_of(chosen)])
    who = operator(owner)
    log = output.StepLog(quiet=json)
    with registry_session() as registry:
        result = deploy_mod.deploy(
            inventory,
            chosen,
            branch,
            registry=registry,
            operator=who,
            task=task or None,
            force=force,
            log=log,
        )
    if json:
        print(output.to_json(result.as_dict()))
        return
    total = sum(s.seconds for s in result.steps)
    print(f"deployed {branch} ({result.commit[:12]}) to {chosen.identifier} in {total:.2f}s")
    print(f"  {result.url}")


@task(
    help={
        "slot": "slot number to roll back",
        "to": "release directory name to go back to (default: the previous verified release)",
        "task": "Linear task key the slot is held for (default: the slot must be held by --owner)",
        "owner": "who rolls back (default: git config user.email, then $USER)",
        "force": "roll back even though the slot is free or another task holds it",
    }
)
@operator_errors
def rollback(c, slot="", to="", task="", owner="", force=False):
    """Switch a slot back to its previous verified release, verified the same way as a deploy."""
    from staging_ops import deploy as deploy_mod
    from staging_ops.registry.from_env import registry_session

    inventory = load(c)
    chosen = inventory.slot(slot)
    require_slot_credentials([inventory.host_of(chosen)])
    with registry_session() as registry:
        result = deploy_mod.rollback(
            inventory,
            chosen,
            registry=registry,
            operator=operator(owner),
            to=to or None,
            task=task or None,
            force=force,
        )
    print(f"{chosen.identifier} is back on {result.release} ({result.commit[:12]})")


@task(help={"slot": "slot number to verify", "json": "print the result as JSON"})
@operator_errors
def verify(c, slot="", json=False):
    """Check that registry, `current` and /api/version agree and every process is healthy.

    Exits 1 naming the two that differ (drift), when the live release was never verified, or
    when the droplet cannot be read; and with one line for each process the live release
    declares that is not up and healthy (`scheduler (UNIT) is down (systemd: failed)`)."""
    from staging_ops import deploy as deploy_mod
    from staging_ops.registry.from_env import registry_session

    inventory = load(c)
    chosen = inventory.slot(slot)
    require_slot_credentials([inventory.host_of(chosen)])
    with registry_session() as registry:
        result = deploy_mod.verify_slot(inventory, chosen, registry)
    if json:
        print(output.to_json(result.as_json()))
    elif result.ok:
        served = result.served or {}
        expires = result.certificate.expires
        tls = f"; certificate valid until {expires}" if expires else ""
        live = (result.live.release if result.live else None) or "no release"
        up = ", ".join(result.processes or {})
        processes = f"; {up} up and healthy" if up else ""
        print(
            f"ok: {result.url} serves {served['branch']} {served['commit'][:12]}, "
            f"current {live}, as recorded{processes}{tls}"
        )
    else:
        if result.problems:
            print(f"mismatch: {result.url}: {'; '.join(result.problems)}")
        for line in result.process_problems:
            print(line)
    if not result.ok:
        raise Exit(code=1)


@task(
    help={
        "slot": "slot number",
        "service": "a process type of the slot (web, airflow, scheduler, a Procfile's own), "
        "web-candidate or airflow-candidate, or ui, airflow-webserver, airflow-scheduler "
        "(default ui)",
        "n": "how many lines (default 100)",
        "follow": "keep printing new lines",
    }
)
@operator_errors
def logs(c, slot="", service="ui", n="100", follow=False):
    """Show a slot's service log from the droplet (journalctl)."""
    from staging_ops import deploy as deploy_mod
    from staging_ops import parsing

    inventory = load(c)
    chosen = inventory.slot(slot)
    lines = parsing.integer(n, "-n", low=1, high=parsing.MAX_LOG_LINES)
    deploy_mod.logs(inventory, chosen, service, lines, follow, sys.stdout)


@task(help={"slot": "slot number", "json": "print JSON"})
@operator_errors
def airflow_login(c, slot="", json=False):
    """Show how to sign in to a slot's Airflow: its URL, the slot's admin and password."""
    from staging_ops.deploy.login import airflow_login as read_login

    inventory = load(c)
    login = read_login(inventory, inventory.slot(slot))
    if json:
        print(output.to_json(login.as_json()))
    else:
        print(f"{login.url}\nuser:     {login.user}\npassword: {login.password}")
