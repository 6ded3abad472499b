"""The inventory's model: the app, the droplets (hosts) and the slots on them. Frozen
dataclasses; load.py builds them from TOML and validates every field."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from staging_ops.errors import BadInput

ROLES = ("qa", "staging")


@dataclass(frozen=True)
class App:
    """The application deployed into every slot, and the commands its units run."""

    name: str
    repo_url: str
    ui_command: str
    airflow_webserver_command: str
    airflow_scheduler_command: str
    migrate_command: str
    requirements: tuple[str, ...] = ("requirements.txt",)
    python: str = "python3"
    verify_timeout: float = 60.0
    linear_url: str = "https://linear.app/issue"
    # "owner/name" on GitHub: a webhook's repository.full_name must be this (None: GitHub
    # webhooks release nothing). auto_release_stop: a webhook's release also stops services.
    github_repository: str | None = None
    auto_release_stop: bool = False


@dataclass(frozen=True)
class Host:
    """A droplet. `protected` hosts (production) are never connected to."""

    name: str
    address: str
    protected: bool = False
    user: str = "root"
    port: int = 22
    key_file: str | None = None
    connect_timeout: float = 10.0
    base_dir: str = "/srv/staging"
    nginx_dir: str = "/etc/nginx"
    systemd_dir: str = "/etc/systemd/system"
    service_user: str = "staging"
    tls_certificate: str = "/etc/letsencrypt/live/justapply.net/fullchain.pem"
    tls_certificate_key: str = "/etc/letsencrypt/live/justapply.net/privkey.pem"
    # CA bundle that health checks trust for this host's certificate; None: the system's.
    tls_ca: str | None = None
    # False: health checks through nginx do not verify the certificate (a host still serving
    # provision-all's self-signed placeholder, e.g. a local droplet without ACME).
    tls_verify: bool = True
    # ACME (certbot, HTTP-01 through the webroot nginx serves): the certificate for all the
    # host's slot names is certbot's lineage named by tls_certificate's directory under
    # /etc/letsencrypt/live/. Let's Encrypt's production directory unless the inventory names
    # another (its staging one: https://acme-staging-v02.api.letsencrypt.org/directory).
    acme: bool = False
    acme_directory: str = "https://acme-v02.api.letsencrypt.org/directory"
    acme_email: str | None = None
    # A CA bundle (on the droplet) that trusts the ACME server's own HTTPS: a local test
    # server's; None: the system's.
    acme_ca_bundle: str | None = None
    http_port: int = 80
    https_port: int = 443
    packages: tuple[str, ...] = ()
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_admin_user: str = "postgres"
    # Used through sudo when `user` is not root (root's SFTP rights for a sudoer).
    sftp_server: str = "/usr/lib/openssh/sftp-server"
    nginx_test_command: str = "nginx -t"
    nginx_reload_command: str = "systemctl reload nginx"
    public_scheme: str = "https"
    public_port: int | None = None
    # The address nginx listens on (`listen ADDR:PORT`); empty: all addresses, as a droplet
    # serving the internet needs. The sandbox sets 127.0.0.1.
    listen_address: str = ""
    # Services that must be enabled at boot and running (None: those of nginx and postgresql
    # that `packages` installs). The sandbox has none: its nginx is not a unit.
    boot_services: tuple[str, ...] | None = None

    @property
    def services_at_boot(self) -> tuple[str, ...]:
        if self.boot_services is not None:
            return self.boot_services
        return tuple(s for s in ("nginx", "postgresql") if s in self.packages)

    @property
    def sites_available(self) -> str:
        return f"{self.nginx_dir}/sites-available"

    @property
    def sites_enabled(self) -> str:
        return f"{self.nginx_dir}/sites-enabled"


@dataclass(frozen=True)
class Slot:
    """staging-N: its subdomain, ports, database, role, and the host it lives on."""

    id: int
    identifier: str
    subdomain: str
    ui_port: int
    airflow_port: int
    database: str
    role: str
    host: str

    def directory(self, host: Host) -> str:
        return f"{host.base_dir}/{self.identifier}"


@dataclass(frozen=True)
class Inventory:
    path: Path
    app: App
    hosts: dict[str, Host]
    slots: dict[int, Slot] = field(default_factory=dict)

    def slot(self, value: object) -> Slot:
        """The slot named by an operator's `--slot` value, or BadInput listing the valid ones."""
        text = str(value).strip()
        valid = self.valid_slots_text()
        if not text.isdigit() or int(text) not in self.slots:
            raise BadInput(f"invalid slot {value!r}: valid slots are {valid}")
        return self.slots[int(text)]

    def valid_slots_text(self) -> str:
        ids = sorted(self.slots)
        if ids and ids == list(range(ids[0], ids[-1] + 1)) and len(ids) > 2:
            return f"{ids[0]}-{ids[-1]}"
        return ", ".join(map(str, ids))

    def host_of(self, slot: Slot) -> Host:
        return self.hosts[slot.host]

    def slots_on(self, host: Host) -> list[Slot]:
        return [s for s in self.slots.values() if s.host == host.name]

    def target_hosts(self) -> list[Host]:
        """Hosts that carry slots; never a protected one (loading already refused that)."""
        used = {s.host for s in self.slots.values()}
        return [h for h in self.hosts.values() if h.name in used and not h.protected]

    def select_slots(self, spec: str | None) -> list[Slot]:
        """`--slots 3,4` → those slots; None/empty → all of them. A slot named twice counts
        once (twice would plan every change of it twice)."""
        if not spec:
            return list(self.slots.values())
        chosen = [self.slot(part) for part in str(spec).split(",") if part.strip()]
        return list(dict.fromkeys(chosen))
