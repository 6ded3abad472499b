"""The inventory's model: the app, the droplets (hosts) and the slots on them. Frozen
dataclasses whose field types say how load.py validates each field read from the TOML: a
field's Kind (in its Annotated type) picks the check in checks.py, so a new field needs only
its line here. A field load.py reads itself (its own check) carries LOADED instead; a field
with neither is not read from the file. Those two markers are what the file may hold: any
other key in a table is refused (file_keys), so a new field is a known key as soon as it has
its line here."""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Annotated

from staging_ops import parsing

ROLES = ("qa", "staging")
# Who may open a host's slot URLs: anyone, or the users of STAGING_SLOT_CREDENTIALS (nginx
# basic auth; staging_ops/slot_access.py).
ACCESS_MODES = ("public", "password")


class Kind(Enum):
    """What a field read from the inventory file must be (checks.CHECKS: one check each)."""

    TEXT = "a non-empty string on one line"
    IDENTIFIER = "lowercase letters, digits and '-'"
    PG_IDENTIFIER = "a PostgreSQL identifier"
    UNIT_COMMAND = "a shell command line on one line"
    ADDRESS = "a host name or IP address to connect to"
    USER = "a Unix user name"
    SCHEME = "http or https"
    HTTPS_URL = "an https:// URL"
    HTTP_URL = "an http:// or https:// URL without credentials"
    PIP_SOURCE = "an absolute path on the droplet or an http(s) URL without credentials"
    EMAIL = "an e-mail address"
    GITHUB_REPOSITORY = "a GitHub repository, owner/name"
    PATH = "an absolute path on the droplet"
    DNS_NAME = "a DNS name of two labels or more"
    ROLE = "one of ROLES"
    ACCESS = "one of ACCESS_MODES"
    GROUP = "a Unix group name"
    PORT = "a TCP port"
    SLOT_PORT = "a TCP port from 1024"
    SLOT_ID = "a slot number from 1 to 9999"
    PORT_OFFSET = "a port offset from 1 to 60000"
    CONNECT_SECONDS = "whole seconds from 1 to 600"
    MEGABYTES = "whole megabytes from 0 to 1048576"
    MEMORY_LIMIT = "whole megabytes from 64 to 1048576"
    SECONDS = "a positive number of seconds"
    FLAG = "true or false"
    PACKAGES = "a list of Debian package names"
    UNIT_NAMES = "a list of systemd unit names"
    RELATIVE_FILES = "a list of relative file names"
    HOST_KEY = "a host key's SHA256 fingerprint, SHA256:<43 base64 characters> (ssh-keygen -l)"


Text = Annotated[str, Kind.TEXT]
Identifier = Annotated[str, Kind.IDENTIFIER]
PgIdentifier = Annotated[str, Kind.PG_IDENTIFIER]
UnitCommand = Annotated[str, Kind.UNIT_COMMAND]
Address = Annotated[str, Kind.ADDRESS]
UserName = Annotated[str, Kind.USER]
Scheme = Annotated[str, Kind.SCHEME]
HttpsUrl = Annotated[str, Kind.HTTPS_URL]
HttpUrl = Annotated[str, Kind.HTTP_URL]
PipSource = Annotated[str, Kind.PIP_SOURCE]
Email = Annotated[str, Kind.EMAIL]
GithubRepository = Annotated[str, Kind.GITHUB_REPOSITORY]
RemotePath = Annotated[str, Kind.PATH]
DnsName = Annotated[str, Kind.DNS_NAME]
Role = Annotated[str, Kind.ROLE]
Access = Annotated[str, Kind.ACCESS]
GroupName = Annotated[str, Kind.GROUP]
Port = Annotated[int, Kind.PORT]
SlotPort = Annotated[int, Kind.SLOT_PORT]
SlotId = Annotated[int, Kind.SLOT_ID]
PortOffset = Annotated[int, Kind.PORT_OFFSET]
ConnectSeconds = Annotated[float, Kind.CONNECT_SECONDS]
Megabytes = Annotated[int, Kind.MEGABYTES]
MemoryLimit = Annotated[int, Kind.MEMORY_LIMIT]
Seconds = Annotated[float, Kind.SECONDS]
Flag = Annotated[bool, Kind.FLAG]
Packages = Annotated[tuple[str, ...], Kind.PACKAGES]
UnitNames = Annotated[tuple[str, ...], Kind.UNIT_NAMES]
RelativeFiles = Annotated[tuple[str, ...], Kind.RELATIVE_FILES]
HostKey = Annotated[str, Kind.HOST_KEY]


class _Loaded:
    """The marker of a field that load.py reads from the file itself, with its own check."""

    def __repr__(self) -> str:
        return "LOADED"


# `name: Annotated[T, LOADED]`: a key of its table in the file, read by load.py's own code.
LOADED = _Loaded()


@functools.cache
def field_kinds(cls: type) -> dict[str, Kind]:
    """The Kind of each field of `cls` that has one (`X | None` included), in the order the
    fields are declared."""
    hints = typing.get_type_hints(cls, include_extras=True)
    kinds = {}
    for f in fields(cls):
        kind = _kind_in(hints[f.name])
        if kind is not None:
            kinds[f.name] = kind
    return kinds


@functools.cache
def file_keys(cls: type) -> dict[str, object]:
    """The keys `cls`'s table may hold in the inventory file, each with its field's type
    hint: the fields with a Kind (checked by checks.py) and those marked LOADED (read by
    load.py itself). load.py refuses every other key."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {
        f.name: hints[f.name]
        for f in fields(cls)
        if _kind_in(hints[f.name]) is not None or _marked_loaded(hints[f.name])
    }


def _marked_loaded(hint: object) -> bool:
    if typing.get_origin(hint) is Annotated:
        return any(m is LOADED for m in hint.__metadata__)
    return any(_marked_loaded(arg) for arg in typing.get_args(hint))


def table_class(hint: object) -> type | None:
    """The dataclass a key's value is a table of (`Annotated[Sub, ...]`, `Sub | None`,
    `tuple[Sub, ...]`), whose keys are then checked in turn; None for any other value (a
    plain value, or a free-form table such as a mapping of names to strings)."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint
    if typing.get_origin(hint) in (dict, Mapping):
        return None  # a mapping's keys are names the file chooses
    for arg in typing.get_args(hint):
        found = table_class(arg)
        if found is not None:
            return found
    return None


def _kind_in(hint: object) -> Kind | None:
    if typing.get_origin(hint) is Annotated:
        return next((m for m in hint.__metadata__ if isinstance(m, Kind)), None)
    for arg in typing.get_args(hint):
        kind = _kind_in(arg)
        if kind is not None:
            return kind
    return None


@dataclass(frozen=True)
class App:
    """The application deployed into every slot, and the commands its units run."""

    name: Identifier
    repo_url: Text
    ui_command: UnitCommand
    airflow_webserver_command: UnitCommand
    airflow_scheduler_command: UnitCommand
    migrate_command: UnitCommand
    requirements: RelativeFiles = ("requirements.txt",)
    python: UnitCommand = "python3"
    # Where pip gets the venv's packages on a droplet that reaches no package index (or not
    # PyPI): pip_find_links, a directory on the droplet or a URL of wheels (alone: pip runs
    # offline, --no-index); pip_index_url, an index instead of pip's default. Neither
    # changes the venv's key: the same files give the same packages wherever they come from.
    pip_find_links: PipSource | None = None
    pip_index_url: HttpUrl | None = None
    verify_timeout: Seconds = 60.0
    # How long a worker (a process type without a port: the scheduler …) must stay up after its
    # restart to pass (app.json's `uptime` for a type overrides it). The sample app's dies
    # within 0.1 s; a real Airflow scheduler needs seconds to fail.
    worker_uptime: Seconds = 0.5
    # Memory admission (deploy/admission.py): what one candidate process (a type with a port:
    # web, airflow) is taken to need when the slot runs no process of that type to measure
    # (a first deploy, a type the release adds); measured types count what they use now.
    # Airflow 2's webserver candidate was seen at ~280 MB PSS.
    candidate_memory_mb: Megabytes = 300
    # Each process unit's memory limit (MemoryMax=, and MemoryHigh= at 90 % of it, where
    # the kernel reclaims the unit's own memory first), so one slot cannot take the droplet
    # down; None: no limit.
    memory_max_mb: MemoryLimit | None = None
    linear_url: Text = "https://linear.app/issue"
    # "owner/name" on GitHub: a webhook's repository.full_name must be this (None: GitHub
    # webhooks release nothing). auto_release_stop: a webhook's release also stops services.
    github_repository: GithubRepository | None = None
    auto_release_stop: Flag = False
    # [app.env]: more of every slot's environment (NAME = "value"), read by the processes and
    # the release phase after the slot's own; load.py checks it itself (env_table).
    env: Annotated[tuple[tuple[str, str], ...], LOADED] = ()


@dataclass(frozen=True)
class Host:
    """A droplet. `protected` hosts (production) are never connected to."""

    # From the [hosts.NAME] table's name.
    name: str
    address: Address
    protected: Flag = False
    user: UserName = "root"
    port: Port = 22
    key_file: RemotePath | None = None
    connect_timeout: ConnectSeconds = 10.0
    # The host key it must present (remote/known_hosts.py): a fingerprint pinned here, else
    # the keys `known_hosts` (default: the ssh config's UserKnownHostsFile, then
    # ~/.ssh/known_hosts) files under its name; `invoke hosts.trust` records one there.
    known_hosts: RemotePath | None = None
    host_key: HostKey | None = None
    # Which of user, port, key_file and connect_timeout the host's table sets: those win over
    # the ssh config (remote/route.py), which fills the others. Not read from the file.
    set_in_inventory: frozenset[str] = frozenset()
    base_dir: RemotePath = "/srv/staging"
    nginx_dir: RemotePath = "/etc/nginx"
    systemd_dir: RemotePath = "/etc/systemd/system"
    service_user: UserName = "staging"
    tls_certificate: RemotePath = "/etc/letsencrypt/live/justapply.net/fullchain.pem"
    tls_certificate_key: RemotePath = "/etc/letsencrypt/live/justapply.net/privkey.pem"
    # CA bundle that health checks trust for this host's certificate; None: the system's.
    tls_ca: RemotePath | None = None
    # False: health checks through nginx do not verify the certificate (a host still serving
    # provision-all's self-signed placeholder, e.g. a local droplet without ACME).
    tls_verify: Flag = True
    # ACME (certbot, HTTP-01 through the webroot nginx serves): the certificate for all the
    # host's slot names is certbot's lineage named by tls_certificate's directory under
    # /etc/letsencrypt/live/ (load.py checks that itself). Let's Encrypt's production
    # directory unless the inventory names another (its staging one:
    # https://acme-staging-v02.api.letsencrypt.org/directory).
    acme: Flag = False
    acme_directory: HttpsUrl = "https://acme-v02.api.letsencrypt.org/directory"
    acme_email: Email | None = None
    # A CA bundle (on the droplet) that trusts the ACME server's own HTTPS: a local test
    # server's; None: the system's.
    acme_ca_bundle: RemotePath | None = None
    http_port: Port = 80
    https_port: Port = 443
    packages: Packages = ()
    # load.py checks it itself: a host name or IP address (it goes into DATABASE_URL).
    postgres_host: Annotated[str, LOADED] = "127.0.0.1"
    postgres_port: Port = 5432
    postgres_admin_user: UserName = "postgres"
    # Used through sudo when `user` is not root (root's SFTP rights for a sudoer); the
    # README documents it as a setting, so it is one (it used to be ignored).
    sftp_server: RemotePath = "/usr/lib/openssh/sftp-server"
    nginx_test_command: Text = "nginx -t"
    nginx_reload_command: Text = "systemctl reload nginx"
    public_scheme: Scheme = "https"
    public_port: Port | None = None
    # "password": every slot URL of the host asks for HTTP basic auth, the users from
    # STAGING_SLOT_CREDENTIALS (hashed on the droplet, never in the inventory); "public":
    # anyone may open them. Either way search engines are told not to index them.
    access: Access = "public"
    # The group nginx's workers run as, which reads the basic-auth file (root:GROUP, 0640):
    # Debian's nginx runs them as www-data.
    nginx_group: GroupName = "www-data"
    # The address nginx listens on (`listen ADDR:PORT`); empty: all addresses, as a droplet
    # serving the internet needs. The sandbox sets 127.0.0.1. load.py checks it itself.
    listen_address: Annotated[str, LOADED] = ""
    # Each slot's candidate instances (the new release, started and verified before it gets
    # traffic; nginx's backup during the hand-over) listen on the slot's UI and Airflow ports
    # plus this: 5004 -> 6004, 8084 -> 9084. load.py refuses any port two of them would share.
    candidate_port_offset: PortOffset = 1000
    # Services that must be enabled at boot and running (None: those of nginx and postgresql
    # that `packages` installs). The sandbox has none: its nginx is not a unit.
    boot_services: UnitNames | None = None
    # Memory a deploy or rollback keeps free on the droplet: a candidate starts only if the
    # droplet's MemAvailable minus what it needs leaves at least this much (deploy/admission.py).
    memory_reserve_mb: Megabytes = 256

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

    id: SlotId
    identifier: Identifier
    subdomain: DnsName
    ui_port: SlotPort
    airflow_port: SlotPort
    database: PgIdentifier
    role: Role
    # load.py checks it itself: a host of the inventory, not a protected one.
    host: Annotated[str, LOADED]

    def directory(self, host: Host) -> str:
        return f"{host.base_dir}/{self.identifier}"

    def candidate_ports(self, host: Host) -> tuple[int, int]:
        """The UI and Airflow ports of the slot's candidate instances."""
        offset = host.candidate_port_offset
        return self.ui_port + offset, self.airflow_port + offset


@dataclass(frozen=True)
class Deploys:
    """[deploys]: `server = true` lets the Staging API server run deploys and rollbacks itself
    (its deploy workers, web/deploy_worker.py), with the SSH key and pinned host keys of the
    inventory's hosts, as the CLI does. Off by default: the server then needs no SSH access."""

    server: Flag = False


@dataclass(frozen=True)
class Inventory:
    """The whole file: its top level holds [app], [hosts.NAME] tables and [[slots]]."""

    # Where it was read from (not a key of the file).
    path: Path
    app: Annotated[App, LOADED]
    # [hosts.NAME]: the keys of [hosts] are the hosts' names; each table is a Host's.
    hosts: Annotated[dict[str, Host], LOADED]
    slots: Annotated[dict[int, Slot], LOADED] = field(default_factory=dict)
    deploys: Annotated[Deploys, LOADED] = Deploys()

    def slot(self, value: object) -> Slot:
        """The slot named by an operator's `--slot` value, or BadInput listing the valid ones."""
        return self.slots[parsing.slot_number(value, self.slots, self.valid_slots_text())]

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
        numbers = parsing.slot_numbers(spec, self.slots, self.valid_slots_text())
        return [self.slots[n] for n in numbers]
