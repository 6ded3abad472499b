"""Render the desired files of a host from the inventory: nginx vhosts, systemd units, env files.

Rendering is pure: it returns {remote path: RenderedFile} and touches nothing, so `--check`
and tests can use it freely.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from staging_ops import slot_access
from staging_ops.inventory import App, Host, Inventory, Slot
from staging_ops.processes import default_spec

REDACTED = "********"
# The unit templates of the process types that have one of their own: service key ->
# (description, process type). Every other type the release declares is an instance of the
# worker template, `<app>-worker@<slot>:<type>`.
SERVICES = {
    "ui": ("Campaign UI", "web"),
    "airflow-webserver": ("Airflow web UI", "airflow"),
    "airflow-scheduler": ("Airflow scheduler", "scheduler"),
}
TYPE_SERVICES = {ptype: service for service, (_, ptype) in SERVICES.items()}
# The services with a port, which get a candidate instance each (no worker has one).
CANDIDATE_SERVICES = ("ui", "airflow-webserver")
WORKER_SERVICE = "worker"
# Where provision-all installs the runner every unit calls and the inventory's process table.
RUNNER_DIR = "bin"
# Read as a file (package data beside the other remote scripts, shellcheck-ed with them), not
# through staging_ops.remote: rendering connects to nothing and imports no SSH library.
RUNNER_SCRIPT = Path(__file__).resolve().parent.parent / "remote" / "scripts" / "run-process.sh"


@dataclass(frozen=True)
class RenderedFile:
    """One file the host should have. `secret` files are redacted in diffs and output."""

    path: str
    content: str
    mode: int = 0o644
    owner: str | None = None
    # The file's group when not the owner's (the basic-auth file: nginx's group).
    group: str | None = None
    kind: str = "file"
    secret: bool = False
    slot: int | None = None


if TYPE_CHECKING:
    from jinja2 import Environment, Template


@cache
def _jinja() -> Environment:
    """Jinja2 is imported on the first render: deploy, status and verify use this module's
    names and ports but render nothing, and would pay its import on every run."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        # Package data (staging_ops/render/templates): an installed wheel renders the same files.
        loader=PackageLoader("staging_ops.render", "templates"),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - config files, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _template(name: str) -> Template:
    return _jinja().get_template(name)


def unit_template(app: App, service: str) -> str:
    """`job-search-ui@.service` for service 'ui'."""
    return f"{app.name}-{service}@.service"


def unit_instance(app: App, service: str, slot: Slot) -> str:
    return f"{app.name}-{service}@{slot.identifier}.service"


def process_unit(app: App, slot: Slot, ptype: str) -> str:
    """The main unit of the slot's process type `ptype`: `job-search-ui@staging-4.service` for
    web, `job-search-worker@staging-4:dag-processor.service` for a type without a template."""
    service = TYPE_SERVICES.get(ptype)
    if service:
        return unit_instance(app, service, slot)
    return f"{worker_unit_prefix(app, slot)}{ptype}.service"


def worker_unit_prefix(app: App, slot: Slot) -> str:
    """`job-search-worker@staging-4:`: a worker type's unit is this, the type and `.service`."""
    return f"{app.name}-{WORKER_SERVICE}@{slot.identifier}:"


def slot_units(app: App, slot: Slot, types: tuple[str, ...] | None = None) -> list[str]:
    """The main units of `types` (default: the three that have a template of their own)."""
    chosen = types if types is not None else tuple(TYPE_SERVICES)
    return [process_unit(app, slot, t) for t in chosen]


def candidate_unit_template(app: App, service: str) -> str:
    """`job-search-ui-candidate@.service` for service 'ui'."""
    return f"{app.name}-{service}-candidate@.service"


def candidate_unit(app: App, slot: Slot, ptype: str) -> str:
    """The candidate unit of the port type `ptype` (web or airflow)."""
    template = candidate_unit_template(app, TYPE_SERVICES[ptype])
    return template.replace("@.", f"@{slot.identifier}.")


def candidate_units(app: App, slot: Slot, types: tuple[str, ...] = ("web", "airflow")) -> list[str]:
    """The slot's candidate instances of `types`, UI first."""
    return [candidate_unit(app, slot, t) for t in types]


def vhost_name(slot: Slot) -> str:
    return f"{slot.subdomain}.conf"


def public_url(host: Host, slot: Slot) -> str:
    port = host.public_port
    suffix = f":{port}" if port and port != {"https": 443, "http": 80}[host.public_scheme] else ""
    return f"{host.public_scheme}://{slot.subdomain}{suffix}"


def database_url(host: Host, slot: Slot, password: str | None) -> str:
    secret = quote(password, safe="") if password is not None else REDACTED
    return (
        f"postgresql://{slot.database}:{secret}@{host.postgres_host}:{host.postgres_port}"
        f"/{slot.database}"
    )


def served_tls_paths(host: Host) -> tuple[str, str]:
    """The certificate and key nginx loads. An ACME host's are links under nginx_dir/tls that
    provision-all points at certbot's lineage once it exists, and until then at a placeholder
    (so nginx can serve the HTTP-01 challenge before any certificate exists); any other host's
    are its configured files."""
    if host.acme:
        return f"{host.nginx_dir}/tls/fullchain.pem", f"{host.nginx_dir}/tls/privkey.pem"
    return host.tls_certificate, host.tls_certificate_key


def placeholder_tls_paths(host: Host) -> tuple[str, str]:
    """Where provision-all makes a self-signed certificate when there is none: beside the
    served links on an ACME host (certbot owns /etc/letsencrypt), else the configured files."""
    if host.acme:
        return f"{host.nginx_dir}/tls/placeholder.crt", f"{host.nginx_dir}/tls/placeholder.key"
    return host.tls_certificate, host.tls_certificate_key


def render_vhost(inventory: Inventory, host: Host, slot: Slot) -> RenderedFile:
    https_suffix = "" if host.https_port == 443 else f":{host.https_port}"
    content = _template("nginx/slot.conf.j2").render(
        slot=slot,
        candidate=slot.candidate_ports(host),
        host=host,
        inventory_name=inventory.path.name,
        acme_root=f"{host.base_dir}/acme",
        https_suffix=https_suffix,
        tls=served_tls_paths(host),
        htpasswd=slot_access.htpasswd_path(host) if host.access == slot_access.PASSWORD else "",
    )
    return RenderedFile(
        f"{host.sites_available}/{vhost_name(slot)}", content, kind="nginx", slot=slot.id
    )


def render_default_server(host: Host) -> RenderedFile:
    content = _template("nginx/default.conf.j2").render(host=host)
    return RenderedFile(f"{host.sites_available}/00-default.conf", content, kind="nginx")


def render_htpasswd(host: Host, text: str | None) -> RenderedFile:
    """The basic-auth file of an `access = "password"` host: `text` as provision-all computed
    it from STAGING_SLOT_CREDENTIALS and the droplet's file (slot_access.htpasswd_text), or
    None: a stand-in line (rendering never reads the environment). Readable by root and
    nginx's group only; nginx reads it, so it is an nginx file (restored with them)."""
    if text is None:
        text = f"# the users of {slot_access.ENV}, hashed by provision-all\n"
    return RenderedFile(
        slot_access.htpasswd_path(host),
        text,
        mode=0o640,
        group=host.nginx_group,
        kind="nginx",
        secret=True,
    )


def render_units(app: App, host: Host) -> list[RenderedFile]:
    """The slots' template units (instance: the slot), their candidates' (which run
    `<slot>/candidate`, the release a deploy is verifying, instead of `current`), and the
    worker template (instance: `<slot>:<type>`). Each runs bin/run-process, which reads the
    command from the release: the units do not change when an app's processes do."""
    files = []
    kinds = [(service, False) for service in SERVICES]
    kinds += [(service, True) for service in CANDIDATE_SERVICES]
    for service, candidate in kinds:
        description, ptype = SERVICES[service]
        template = (candidate_unit_template if candidate else unit_template)(app, service)
        files.append(
            _unit(
                app,
                host,
                template,
                description + (" candidate" if candidate else ""),
                instance=f"%i:{ptype}",
                instance_doc="the slot identifier",
                candidate=candidate,
            )
        )
    worker = _unit(
        app,
        host,
        unit_template(app, WORKER_SERVICE),
        "Worker process",
        instance="%i",
        instance_doc="<slot>:<process type>",
        candidate=False,
    )
    return [*files, worker]


def _unit(
    app: App,
    host: Host,
    template: str,
    description: str,
    instance: str,
    instance_doc: str,
    candidate: bool,
) -> RenderedFile:
    content = _template("systemd/slot-service.j2").render(
        app=app,
        host=host,
        description=description,
        instance=instance,
        instance_doc=instance_doc,
        base_dir=host.base_dir,
        candidate=candidate,
        # The worker template's instance names no directory: run-process checks the release.
        condition=instance != "%i",
        directory="candidate" if candidate else "current",
    )
    return RenderedFile(f"{host.systemd_dir}/{template}", content, kind="unit")


def render_runner(inventory: Inventory, host: Host) -> list[RenderedFile]:
    """bin/run-process (every unit's ExecStart and the release phase) and bin/app.processes,
    the inventory's commands for a release without a Procfile of its own."""
    directory = f"{host.base_dir}/{RUNNER_DIR}"
    runner = RUNNER_SCRIPT.read_text()
    table = default_spec(inventory.app).process_table()
    header = "# The inventory's [app] commands, for releases without a Procfile (staging-ops).\n"
    return [
        RenderedFile(f"{directory}/run-process", runner, mode=0o755, owner="root", kind="unit"),
        RenderedFile(f"{directory}/app.processes", header + table, owner="root", kind="unit"),
    ]


AIRFLOW_ADMIN = "admin"


def airflow_admin_password(slot: Slot, database_password: str | None) -> str:
    """The slot's Airflow admin password: derived from its database password (kept only in its
    env file), so it needs no store of its own and changes when that one is rotated."""
    if database_password is None:
        return REDACTED
    digest = hmac.new(
        database_password.encode(), f"airflow-admin:{slot.identifier}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).decode()[:24]


def render_slot_env(host: Host, slot: Slot, password: str | None) -> RenderedFile:
    content = _template("systemd/slot.env.j2").render(
        slot=slot,
        public_url=public_url(host, slot),
        database_url=database_url(host, slot, password),
        shared=f"{slot.directory(host)}/shared",
        admin=AIRFLOW_ADMIN,
        admin_password=airflow_admin_password(slot, password),
    )
    return RenderedFile(
        f"{slot.directory(host)}/shared/env",
        content,
        mode=0o600,
        owner=host.service_user,
        kind="env",
        secret=True,
        slot=slot.id,
    )


def render_candidate_env(host: Host, slot: Slot) -> RenderedFile:
    """The candidate units' ports, read after the slot's env file."""
    content = _template("systemd/candidate.env.j2").render(
        slot=slot, ports=slot.candidate_ports(host)
    )
    return RenderedFile(
        f"{slot.directory(host)}/shared/candidate.env",
        content,
        owner=host.service_user,
        kind="env",
        slot=slot.id,
    )


def render_app_env(app: App, host: Host, slot: Slot) -> RenderedFile:
    """The inventory's [app.env] for one slot, its templates filled: `{slot}`, `{slot_id}`,
    `{shared}`, `{current}` as they are, `{release}` as ${RELEASE_DIR} (the release the process
    runs from: `current`, `candidate`, or the one being migrated)."""
    root = slot.directory(host)
    values = {
        "slot": slot.identifier,
        "slot_id": str(slot.id),
        "shared": f"{root}/shared",
        "current": f"{root}/current",
        "release": "${RELEASE_DIR}",
    }
    env = [(name, value.format_map(values)) for name, value in app.env]
    content = _template("systemd/app.env.j2").render(slot=slot, env=env)
    return RenderedFile(
        f"{root}/shared/app.env",
        content,
        mode=0o640,
        owner=host.service_user,
        kind="env",
        slot=slot.id,
    )


def render_release_env(commit: str, branch: str, deployed_at: str) -> str:
    return _template("systemd/release.env.j2").render(
        commit=commit, branch=branch, deployed_at=deployed_at
    )


def render_host(
    inventory: Inventory,
    host: Host,
    slots: list[Slot] | None = None,
    passwords: dict[int, str] | None = None,
    htpasswd: str | None = None,
) -> dict[str, RenderedFile]:
    """Every file `host` should carry for `slots` (default: all of its slots).

    Passwords missing from `passwords` are redacted, which is what `invoke render` shows;
    so are the basic-auth file's hashes without `htpasswd` (an `access = "password"` host's).
    """
    chosen = slots if slots is not None else inventory.slots_on(host)
    passwords = passwords or {}
    files = [
        render_default_server(host),
        *render_units(inventory.app, host),
        *render_runner(inventory, host),
    ]
    if host.access == slot_access.PASSWORD:
        files.append(render_htpasswd(host, htpasswd))
    for slot in chosen:
        files.append(render_vhost(inventory, host, slot))
        files.append(render_slot_env(host, slot, passwords.get(slot.id)))
        files.append(render_candidate_env(host, slot))
        files.append(render_app_env(inventory.app, host, slot))
    return {f.path: f for f in files}
