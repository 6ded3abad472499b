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

from devtools import sandbox
from staging_ops import inventory as inv
from staging_ops import output, render
from staging_ops.errors import BadInput, StagingError
from staging_ops.slot_table import SLOT_TABLE, write_slot_table

ROOT = Path(__file__).resolve().parent
DOC_PATH = ROOT / SLOT_TABLE
DEFAULT_INVENTORY = ROOT / inv.DEFAULT_INVENTORY


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


def _operator(owner: str) -> str:
    from staging_ops.claims.owner import owner_or_default

    return owner_or_default(owner or None)


def load(c: Any) -> inv.Inventory:
    config = c.config.get("staging", {}) or {}
    return inv.load_inventory(inv.inventory_path(config.get("inventory"), DEFAULT_INVENTORY))


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
        from staging_ops.slot_table import render_slot_table

        current = DOC_PATH.read_text() if DOC_PATH.exists() else ""
        if current != render_slot_table(inventory):
            raise StagingError(f"{DOC_PATH} is out of date: run `invoke registry-doc`")
        print(f"{DOC_PATH}: up to date")
        return
    changed = write_slot_table(inventory, DOC_PATH)
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
            dashboard=True,
        )
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


@task(
    name="provision-all",
    help={
        "check": "dry run: print the plan, change nothing",
        "diff": "show unified diffs of changed files (secrets redacted)",
        "slots": "limit the run to these slots, e.g. 3,4 (default: all)",
        "json": "print a machine-readable summary (with a `changed` total) instead",
    },
)
@operator_errors
def provision_all(c, check=False, diff=False, slots=None, json=False):
    """Converge every staging host: packages, dirs, nginx, units, env files, databases."""
    import os

    from staging_ops import provision

    inventory = load(c)
    chosen = inventory.select_slots(slots)

    def show(report: provision.HostReport, log: output.StepLog) -> None:
        if json:
            return
        print(f"{report.host}:")
        for line in log.lines:
            print(line)
        if report.error:
            print(f"  {output.paint('error', 'failed')}: {report.error}")

    result = provision.provision_all(
        inventory,
        chosen,
        check=check,
        diff=diff,
        registry_dsn=os.environ.get("STAGING_REGISTRY_DSN"),
        on_host_done=show,
        # Progress of long steps goes to stderr, so --json's stdout stays one document.
        progress=lambda line: print(f"  … {line}", file=sys.stderr, flush=True),
    )
    if json:
        print(output.to_json(result.as_dict()))
    else:
        registry = result.registry
        if registry:
            outcome = (
                "failed"
                if registry.get("error")
                else ("changed" if registry.get("changed") else "ok")
            )
            print(
                output.step_line(
                    "registry migrations",
                    outcome,
                    registry.get("seconds", 0),
                    registry.get("error", ""),
                )
            )
        print("summary:" + (" (check: nothing was changed)" if check else ""))
        for report in result.hosts:
            ok = len([s for s in report.steps if s["outcome"] == "ok"])
            print(
                f"  {report.host:<12} ok={ok} changed={report.changed} "
                f"failed={int(report.error is not None)} commands={report.commands} "
                f"uploads={report.uploads} {report.seconds:.2f}s"
            )
    if result.failed:
        raise Exit(code=1)


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
    operator = _operator(owner)
    log = output.StepLog(quiet=json)
    with registry_session() as registry:
        result = deploy_mod.deploy(
            inventory,
            chosen,
            branch,
            registry=registry,
            operator=operator,
            task=task or None,
            force=force,
            log=log,
        )
    if json:
        print(output.to_json(result.as_dict()))
        return
    total = sum(s["seconds"] for s in result.steps)
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
    with registry_session() as registry:
        result = deploy_mod.rollback(
            inventory,
            chosen,
            registry=registry,
            operator=_operator(owner),
            to=to or None,
            task=task or None,
            force=force,
        )
    print(f"{chosen.identifier} is back on {result.release} ({result.commit[:12]})")


@task(help={"slot": "slot number to verify", "json": "print the result as JSON"})
@operator_errors
def verify(c, slot="", json=False):
    """Ask the slot's public URL for /api/version and compare it with the registry."""
    from staging_ops import deploy as deploy_mod
    from staging_ops.registry.from_env import registry_session

    inventory = load(c)
    chosen = inventory.slot(slot)
    with registry_session() as registry:
        result = deploy_mod.verify_slot(inventory, chosen, registry)
    if json:
        print(output.to_json(result))
    elif result["ok"]:
        served = result["served"]
        expires = (result.get("certificate") or {}).get("expires")
        tls = f"; certificate valid until {expires}" if expires else ""
        print(f"ok: {result['url']} serves {served['branch']} {served['commit'][:12]}{tls}")
    else:
        print(f"mismatch: {result['url']}: {result['problem']}")
    if not result["ok"]:
        raise Exit(code=1)


@task(
    help={
        "slot": "slot number",
        "service": "ui, airflow-webserver or airflow-scheduler (default ui)",
        "n": "how many lines (default 100)",
        "follow": "keep printing new lines",
    }
)
@operator_errors
def logs(c, slot="", service="ui", n=100, follow=False):
    """Show a slot's service log from the droplet (journalctl)."""
    from staging_ops import deploy as deploy_mod

    inventory = load(c)
    deploy_mod.logs(inventory, inventory.slot(slot), service, int(n), follow, sys.stdout)


ns = Collection()
ns.add_task(render_, name="render")
ns.add_task(provision_all)
ns.add_task(deploy)
ns.add_task(rollback)
ns.add_task(verify)
ns.add_task(logs)
ns.add_task(registry_doc)
ns.add_collection(Collection("sandbox", sandbox_up, sandbox_down, sandbox_status))

# --- droplet (devtools) ---
# A real Debian 12 droplet in systemd-nspawn for end-to-end tests (devtools/droplet, not part
# of staging_ops). Imported inside the tasks: `invoke --list` never pays for it.


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
        for name, alive in state["processes"].items():
            print(f"  {name:<16} {'running' if alive else 'stopped'}")
    if not state["up"]:
        raise Exit(code=1)


ns.add_collection(Collection("droplet", droplet_up, droplet_down, droplet_status))

# --- claims (registry) ---
# Slot claims in marts.staging_slots, directly (STAGING_REGISTRY_DSN) or through the Staging API
# (STAGING_API_URL + STAGING_API_TOKEN). staging_ops modules are imported inside the tasks so
# `invoke --list` and unrelated tasks never pay for psycopg2, requests or Flask.


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@task(
    help={
        "slot": "slot number, or 'auto' for the lowest free QA slot (never slot 10)",
        "task": "Linear task key, e.g. JA-123 (case-insensitive, stored upper-case)",
        "owner": "who holds the claim (default: git config user.email, then $USER)",
        "ttl": "how long the claim lasts: 30m, 12h, 7d (default 7d); each deploy renews it",
        "note": "free text shown by status and history",
        "wait": "if the slot is taken, keep trying for this long (e.g. 10m)",
    }
)
@operator_errors
def claim(c, slot="", task="", owner="", ttl="7d", note="", wait=""):
    """Claim a slot for a Linear task (the task claiming its own slot again renews it)."""
    from staging_ops.claims import service as claims
    from staging_ops.claims import view as claims_view
    from staging_ops.registry.from_env import registry_session

    request = claims.ClaimRequest.parse(
        load(c), slot=slot, task=task, owner=owner, ttl=ttl, note=note, wait=wait
    )
    with registry_session() as registry:
        result = claims.claim(registry, request, notify=_stderr)
    print(claims_view.describe_claim(result))


@task(
    help={
        "slot": "slot number to release",
        "task": "the holding task (naming it proves you hold the slot, like being its owner)",
        "owner": "who you are (default: git config user.email, then $USER)",
        "force": "release even if someone else holds the slot",
        "stop": "also stop the slot's services",
        "reset_db": "also recreate the slot's database, empty",
    }
)
@operator_errors
def release(c, slot="", task="", owner="", force=False, stop=False, reset_db=False):
    """Release a slot (only its owner or task may, unless --force)."""
    from staging_ops.claims import service as claims
    from staging_ops.claims import view as claims_view
    from staging_ops.registry.from_env import registry_session

    inventory = load(c)
    with registry_session() as registry:
        outcome = claims.release(
            registry,
            inventory,
            slot,
            by=owner,
            task=task,
            force=force,
            stop=stop,
            reset_db=reset_db,
        )
    print(claims_view.describe_release(outcome))


@task(
    help={
        "json": "print a JSON list of slot objects instead of the table",
        "health": "check each slot's UI and Airflow (default on; --no-health skips it)",
    }
)
@operator_errors
def status(c, json=False, health=True):
    """Show every slot: claim, deployed branch/commit, expiry, and live UI/Airflow health."""
    from staging_ops.claims import service as claims
    from staging_ops.claims import view as claims_view
    from staging_ops.registry.from_env import registry_session

    inventory = load(c)
    with registry_session() as registry:
        rows = claims.status_rows(registry, inventory, with_health=health)
    print(output.to_json(rows) if json else claims_view.status_table(rows))


@task(
    help={
        "slot": "only this slot's events (default: all slots)",
        "limit": "how many events, newest first (default 20)",
        "json": "print the events (with full before/after rows) as JSON",
    }
)
@operator_errors
def history(c, slot="", limit=20, json=False):
    """Show who claimed, renewed, deployed and released what, and when (newest first)."""
    from staging_ops.claims import view as claims_view
    from staging_ops.registry.from_env import registry_session

    slot_id = load(c).slot(slot).id if slot else None
    with registry_session() as registry:
        events = registry.history(slot_id, int(limit))
    print(
        output.to_json([e.to_dict() for e in events]) if json else claims_view.history_table(events)
    )


@task(
    help={
        "check": "only show what would be released",
        "owner": "who reaps, recorded in the history (default: git user.email, then $USER)",
        "json": "print the result as JSON",
    }
)
@operator_errors
def reap(c, check=False, owner="", json=False):
    """Release expired claims and claims whose branch is merged into main or deleted."""
    from staging_ops.claims import service as claims
    from staging_ops.claims import view as claims_view
    from staging_ops.registry.from_env import registry_session

    inventory = load(c)
    with registry_session() as registry:
        report = claims.reap(registry, inventory, check=check, by=owner or None)
    items = report.items
    print(output.to_json([i.to_dict() for i in items]) if json else claims_view.reap_table(items))
    if report.problem:
        # What could be reaped was (see above); the branch checks are what failed.
        raise StagingError(report.problem)


@task(name="migrate")
@operator_errors
def registry_migrate(c):
    """Create or upgrade marts.staging_slots (needs STAGING_REGISTRY_DSN) and register slots."""
    from staging_ops import registry
    from staging_ops.registry.from_env import require_dsn

    report = registry.migrate_report(require_dsn(), load(c))
    print(f"migrations applied: {', '.join(report.applied) or 'none'}")
    print(f"slots added: {len(report.slots_added)}, updated: {len(report.slots_updated)}")
    print(f"changes: {report.changes}")


@task(
    name="serve",
    help={
        "host": "address to listen on (default 127.0.0.1; put TLS in front of anything else)",
        "port": "port to listen on (default 8700)",
        "workers": "worker processes (default: one per core, at least 2)",
    },
)
@operator_errors
def api_serve(c, host="127.0.0.1", port=8700, workers=0):
    """Run the Staging API and Dashboard under granian (needs STAGING_REGISTRY_DSN,
    STAGING_API_JWT_SECRET)."""
    from staging_ops.web.server import ServeOptions, serve_staging

    options = ServeOptions(host, int(port), int(workers))
    print(f"Staging API on http://{host}:{port}/api/staging (/api/staging/openapi.json)")
    serve_staging(options)


@task(
    name="token",
    help={
        "subject": "who the token is for (default: git config user.email, then $USER)",
        "ttl": "how long it is valid: 30m, 12h, 7d (default 12h)",
    },
)
@operator_errors
def api_token(c, subject="", ttl="12h"):
    """Print an admin JWT for STAGING_API_TOKEN (signed with STAGING_API_JWT_SECRET)."""
    from staging_ops.claims.model import parse_duration
    from staging_ops.web import auth

    seconds = int(parse_duration(ttl, "ttl").total_seconds())
    from staging_ops.claims.owner import default_owner

    print(auth.mint_token(auth.secret_from_env(), subject or default_owner(), seconds))


ns.add_task(claim)
ns.add_task(release)
ns.add_task(status)
ns.add_task(history)
ns.add_task(reap)
ns.add_collection(Collection("registry", registry_migrate))
ns.add_collection(Collection("api", api_serve, api_token))


# --- webhooks ---
# The operator's check of the GitHub and Linear webhooks: a signed sample event to a running API.


@task(
    name="test",
    help={
        "github": "send a GitHub event (pull_request merged, by default)",
        "linear": "send a Linear Issue update (moved to a completed state, by default)",
        "url": "the API server (default: STAGING_API_URL, the sandbox's, or 127.0.0.1:8700)",
        "branch": "GitHub: the PR's head branch (or the deleted branch)",
        "task": "Linear: the issue's key, e.g. JA-123",
        "event": "GitHub: pull_request (default), delete or ping",
        "unmerged": "GitHub: the PR was closed without merging (frees nothing)",
        "state": "Linear: completed (default) or canceled",
        "repository": "GitHub: owner/name (default: the inventory's github_repository)",
    },
)
@operator_errors
def webhooks_test(
    c,
    github=False,
    linear=False,
    url="",
    branch="",
    task="",
    event="pull_request",
    unmerged=False,
    state="completed",
    repository="",
):
    """Send a correctly signed sample webhook event to a running Staging API."""
    from staging_ops.web.webhooks import sample

    if github == linear:
        raise BadInput("choose one of --github or --linear")
    source = "github" if github else "linear"
    inventory_repository = None
    if github and not repository:
        inventory_repository = load(c).app.github_repository
    code, answer = sample.test_event(
        source=source,
        url=url or None,
        branch=branch,
        task=task,
        event=event,
        unmerged=unmerged,
        state=state,
        repository=repository,
        inventory_repository=inventory_repository,
    )
    print(f"{code}: {answer.get('message', '')}")
    if code >= 400:
        raise Exit(code=1)


ns.add_collection(Collection("webhooks", webhooks_test))
