"""`invoke registry.*`: the registry's schema (marts.staging_slots and its events)."""

from __future__ import annotations

from invoke import task

from staging_ops.cli.common import load, operator_errors


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
