"""Claim tasks on marts.staging_slots, directly (STAGING_REGISTRY_DSN) or through the
Staging API (STAGING_API_URL + STAGING_API_TOKEN): claim, release, status, history, reap."""

from __future__ import annotations

from invoke import task

from staging_ops import output
from staging_ops.cli.common import load, operator_errors, require_slot_credentials, stderr_line
from staging_ops.errors import StagingError


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
        result = claims.claim(registry, request, notify=stderr_line)
    print(claims_view.describe_claim(result))


@task(
    help={
        "slot": "slot number to release",
        "task": "the holding task (naming it proves you hold the slot, like being its owner)",
        "owner": "who you are (default: git config user.email, then $USER)",
        "force": "release the slot whoever holds it; with --task, only while that task holds it",
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
        "health": "check each slot's UI, Airflow, processes and drift (default on; "
        "--no-health: the registry alone)",
    }
)
@operator_errors
def status(c, json=False, health=True):
    """Show every slot: claim, deployed branch/commit, expiry, live health, processes, drift.

    The processes column names each process the live release declares (`web✓ airflow✓
    scheduler✗`; `--json`: `processes`, {type: {"state", "unit", "problem"}}): down (its unit
    is not active), restarting, unhealthy (active, but its health answer or its component in
    Airflow's health JSON is not healthy) or up; read by the same one command per host.

    The drift column compares the registry's commit, the release `current` points to on the
    droplet (one remote command per host) and what /api/version serves: "no", the pairs
    that differ ("registry≠current"), "unverified" when the live release was never verified
    (also after the pairs), or "unknown" when the host cannot be reached.

    The last line says whether GitHub and Linear are told of deploys and releases, and how
    many events are not delivered yet or were given up (`--json`: each slot's
    `integrations`, {"github": {"pending", "failed"} or "off", "linear": ...})."""
    from staging_ops.claims import service as claims
    from staging_ops.claims import view as claims_view
    from staging_ops.integrations.status import summary
    from staging_ops.registry.from_env import registry_session

    inventory = load(c)
    if health:
        require_slot_credentials(inventory.target_hosts(), " (or --no-health)")
    with registry_session() as registry:
        rows = claims.status_rows(registry, inventory, with_health=health)
        told = summary(registry)
    if json:
        print(
            output.to_json(
                [row.as_json() | {"integrations": told.for_slot(row.slot_id)} for row in rows]
            )
        )
    else:
        print(f"{claims_view.status_table(rows)}\n{told.line()}")


@task(
    help={
        "slot": "only this slot's events (default: all slots)",
        "limit": "how many events, newest first (default 20)",
        "json": "print the events (with full before/after rows) as JSON",
    }
)
@operator_errors
def history(c, slot="", limit="20", json=False):
    """Show who claimed, renewed, deployed and released what, and when (newest first)."""
    from staging_ops import parsing
    from staging_ops.claims import view as claims_view
    from staging_ops.registry.from_env import registry_session

    slot_id = load(c).slot(slot).id if slot else None
    count = parsing.integer(limit, "limit", low=1, high=parsing.MAX_HISTORY)
    with registry_session() as registry:
        events = registry.history(slot_id, count)
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
