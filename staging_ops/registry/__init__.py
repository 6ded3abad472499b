"""The claim registry: marts.staging_slots and its events on PostgreSQL (postgres.py), the slot
list kept in memory until PostgreSQL says it changed (changes.py), the schema migrations
(migrations/), and the same interface over the Staging API (api_client.py)."""

from staging_ops.registry.postgres import MigrationReport, PostgresRegistry, migrate, migrate_report

__all__ = ["MigrationReport", "PostgresRegistry", "migrate", "migrate_report"]
