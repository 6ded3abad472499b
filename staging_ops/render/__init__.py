"""Desired files, rendered locally with Jinja2 (StrictUndefined) from templates/ (package data):
nginx vhosts, systemd units, env files."""

from staging_ops.render.render import (
    REDACTED,
    SERVICES,
    RenderedFile,
    database_url,
    placeholder_tls_paths,
    public_url,
    render_default_server,
    render_host,
    render_release_env,
    render_slot_env,
    render_units,
    render_vhost,
    served_tls_paths,
    slot_units,
    unit_instance,
    unit_template,
    vhost_name,
)

__all__ = [
    "REDACTED",
    "SERVICES",
    "RenderedFile",
    "database_url",
    "placeholder_tls_paths",
    "public_url",
    "render_default_server",
    "render_host",
    "render_release_env",
    "render_slot_env",
    "render_units",
    "render_vhost",
    "served_tls_paths",
    "slot_units",
    "unit_instance",
    "unit_template",
    "vhost_name",
]
