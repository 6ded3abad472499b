"""Developer tooling for staging-ops (not part of the product package `staging_ops`)."""
