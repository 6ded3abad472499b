"""The claim registry: marts.staging_slots and its events on PostgreSQL (postgres.py; the
deciding UPDATEs: claim_queries.py; the events: history.py; pooled connections: pool.py;
reaching the database: dsn.py; table names and rows: schema.py; the schema and slot rows:
migrator.py, with the migrations in migrations/), the slot list kept in memory until
PostgreSQL says it changed (changes.py), the same interface over the Staging API
(api_client.py), and which of the two the environment names (from_env.py)."""

from staging_ops.registry.migrator import MigrationReport, migrate, migrate_report
from staging_ops.registry.postgres import PostgresRegistry

__all__ = ["MigrationReport", "PostgresRegistry", "migrate", "migrate_report"]
