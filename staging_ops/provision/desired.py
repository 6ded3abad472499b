"""What one host should have, computed locally from the inventory: directories, rendered
files, links (`sites-enabled`, and the `multi-user.target.wants` links `systemctl enable`
makes), files to remove, the marker path. Pure: no host is asked."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from staging_ops import slot_access
from staging_ops.errors import BadInput
from staging_ops.inventory import App, Host, Inventory, Slot
from staging_ops.provision import databases
from staging_ops.remote.facts import HostFacts
from staging_ops.render import (
    RUNNER_DIR,
    SERVICES,
    RenderedFile,
    placeholder_tls_paths,
    render_host,
    served_tls_paths,
    unit_template,
    vhost_name,
)

# Handlers a run has yet to run (see handlers.py), kept on the host until they have run.
MARKER = ".staging-ops-pending.json"


@dataclass(frozen=True)
class Desired:
    """Everything one host should have, computed locally."""

    app: App
    host: Host
    slots: list[Slot]
    dirs: dict[str, tuple[int, str]]  # path -> (mode, owner name)
    files: dict[str, RenderedFile]
    links: dict[str, str]  # path -> target
    removes: list[str]
    marker: str
    # Every slot name the host serves (not only the chosen slots'): a placeholder
    # certificate must cover them all.
    certificate_names: list[str]
    # The host's slots this run does not converge (`--slots`), by identifier: a change to a
    # file they share (a unit template, the runner) leaves them to reload on a later run.
    others: tuple[str, ...] = ()

    def current_link(self, slot: Slot) -> str:
        return f"{slot.directory(self.host)}/current"

    def env_path(self, slot: Slot) -> str:
        return f"{slot.directory(self.host)}/shared/env"


def desired_state(
    inventory: Inventory,
    host: Host,
    slots: list[Slot],
    passwords: dict[int, str],
    htpasswd: str | None = None,
) -> Desired:
    """The host's desired state for `slots`, their env files holding `passwords`, and an
    `access = "password"` host's basic-auth file holding `htpasswd` (access_file's)."""
    svc = host.service_user
    dirs: dict[str, tuple[int, str]] = {
        host.base_dir: (0o755, "root"),
        f"{host.base_dir}/acme": (0o755, "root"),
        host.sites_available: (0o755, "root"),
        host.sites_enabled: (0o755, "root"),
        f"{host.systemd_dir}/multi-user.target.wants": (0o755, "root"),
        f"{host.base_dir}/{RUNNER_DIR}": (0o755, "root"),
    }
    if host.acme:
        dirs[f"{host.nginx_dir}/tls"] = (0o755, "root")
    for slot in slots:
        base = slot.directory(host)
        dirs[base] = (0o755, svc)
        dirs[f"{base}/releases"] = (0o755, svc)
        dirs[f"{base}/shared"] = (0o750, svc)
        # The slot's Airflow home, HOME and the processes' temp dirs: its own, never /tmp.
        for name in ("airflow", "home", "tmp"):
            dirs[f"{base}/shared/{name}"] = (0o750, svc)
    files = render_host(inventory, host, slots, passwords, htpasswd)
    links = {
        f"{host.sites_enabled}/{name}": f"{host.sites_available}/{name}"
        for name in ["00-default.conf", *(vhost_name(s) for s in slots)]
    }
    wants = f"{host.systemd_dir}/multi-user.target.wants"
    # Debian's stock site also claims default_server on port 80; a host made public again
    # keeps no basic-auth file (hashes nobody needs any more).
    removes = [f"{host.sites_enabled}/default"]
    if slot_access.htpasswd_path(host) not in files:
        removes.append(slot_access.htpasswd_path(host))
    for slot in slots:
        for service in SERVICES:
            template = unit_template(inventory.app, service)
            instance = template.replace("@.", f"@{slot.identifier}.")
            links[f"{wants}/{instance}"] = f"{host.systemd_dir}/{template}"
    return Desired(
        app=inventory.app,
        host=host,
        slots=slots,
        dirs=dirs,
        files=files,
        links=links,
        removes=removes,
        marker=f"{host.base_dir}/{MARKER}",
        certificate_names=[s.subdomain for s in inventory.slots_on(host)],
        others=tuple(s.identifier for s in inventory.slots_on(host) if s not in slots),
    )


def tls_paths(host: Host) -> list[str]:
    """Where a placeholder certificate goes when there is none (render.placeholder_tls_paths):
    an ACME host's beside its served links, any other host's at its configured files."""
    return list(placeholder_tls_paths(host))


def tls_links(host: Host) -> list[str]:
    """An ACME host's served certificate and key: links (render.served_tls_paths)."""
    return list(served_tls_paths(host)) if host.acme else []


def slot_passwords(
    facts: HostFacts, host: Host, slots: list[Slot]
) -> tuple[dict[int, str], set[int]]:
    """Each slot's database password, as its env file keeps it (the only place it lives), or
    a fresh one; and the ids of the slots that got a fresh one."""
    passwords: dict[int, str] = {}
    fresh: set[int] = set()
    for slot in slots:
        content = facts.text(f"{slot.directory(host)}/shared/env")
        # Contents come byte-exact (CRLF kept); a drifted CRLF env file keeps its password.
        existing = databases.password_from_env_file(
            content.replace("\r\n", "\n") if content else content
        )
        if existing:
            passwords[slot.id] = existing
        else:
            passwords[slot.id] = secrets.token_urlsafe(24)
            fresh.add(slot.id)
    return passwords, fresh


def access_file(
    facts: HostFacts, host: Host, credentials: tuple[slot_access.Credential, ...] | None
) -> str | None:
    """The basic-auth file an `access = "password"` host should have (None: a public host).

    From `credentials` (STAGING_SLOT_CREDENTIALS), keeping each hash of the droplet's file that
    still matches its password (slot_access.htpasswd_text): the same credentials, the same
    file. Without credentials, the droplet's file stays as it is (an operator without the
    secret can still converge the rest); a host with none yet is refused (BadInput), since
    nginx would then lock everyone out, or fail `nginx -t`, with no user to let in."""
    if host.access != slot_access.PASSWORD:
        return None
    path = slot_access.htpasswd_path(host)
    current = facts.text(path)
    if credentials is not None:
        return slot_access.htpasswd_text(credentials, current)
    if current is not None and slot_access.htpasswd_entries(current):
        return current
    raise BadInput(
        f'{host.name}: access = "password" but {slot_access.ENV} is not set and the droplet '
        f"has no users in {path} yet: set it (user:password[,user:password...]); nothing "
        "was changed"
    )
