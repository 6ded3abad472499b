"""Webhooks on the Staging API: a merged PR, a deleted branch (github.py) or a completed or
canceled Linear issue (linear.py) frees its slot. decision.py holds what both share, routes.py
the endpoints; sample.py sends a signed sample event (`invoke webhooks.test`)."""

from staging_ops.web.webhooks.routes import register_webhooks, webhooks_blueprint

__all__ = ["register_webhooks", "webhooks_blueprint"]
