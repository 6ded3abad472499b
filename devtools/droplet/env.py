"""What a droplet dir holds: state.json (so down/status find everything), the operator key,
inventory.toml and env (the shapes devtools.sandbox writes, for a real droplet)."""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from devtools.droplet.machine import SAMPLE_REPO_MOUNT, Layout
from staging_ops.errors import StagingError

STATE_FILE = "state.json"
KIND = "staging-ops droplet"
REGISTRY_DB = "staging_registry"


def dir_hash(path: Path) -> str:
    return hashlib.sha256(str(path).encode()).hexdigest()[:8]


@dataclass
class Droplet:
    """What `up` built; saved as DIR/state.json."""

    dir: str
    name: str
    machine: str  # nspawn's --machine, the bridge's name, unique to the dir
    cgroup: str
    subnet: str
    host_address: str
    address: str
    pg_port: int
    proxy_port: int
    base: str = ""
    proxy_cache: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    bridge_created: bool = False
    # "pebble": a local ACME server in the droplet's network namespace (acme.py); "": none.
    acme: str = ""
    kind: str = KIND
    started_at: float = field(default_factory=time.time)

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def bridge(self) -> str:
        return self.machine

    @property
    def veth(self) -> str:
        # nspawn's host side of --network-bridge: "vb-" + the machine name (<= 15 chars).
        return f"vb-{self.machine}"

    @property
    def layout(self) -> Layout:
        return Layout(self.path / "machine")

    @property
    def proxy_dir(self) -> Path:
        return self.path / "apt-proxy"

    @property
    def pg_dir(self) -> Path:
        return self.path / "pg"

    @property
    def key_path(self) -> Path:
        return self.path / "keys" / "id_ed25519"

    @property
    def repo_dir(self) -> Path:
        return self.path / "repo"

    @property
    def repo_path(self) -> Path:
        return self.repo_dir / "sample-app.git"

    @property
    def repo_url(self) -> str:
        """The bare repository as the droplet sees it (bind-mounted read-only)."""
        return f"{SAMPLE_REPO_MOUNT}/{self.repo_path.name}"

    @property
    def inventory_path(self) -> Path:
        return self.path / "inventory.toml"

    @property
    def env_path(self) -> Path:
        return self.path / "env"

    @property
    def proxy_url(self) -> str:
        return f"http://{self.host_address}:{self.proxy_port}/"

    @property
    def registry_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{REGISTRY_DB}"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"

    def env(self) -> dict[str, str]:
        return {
            "STAGING_INVENTORY": str(self.inventory_path),
            "STAGING_REGISTRY_DSN": self.registry_dsn,
            "STAGING_SANDBOX_REPO": str(self.repo_path),
            "STAGING_DROPLET_DIR": str(self.path),
        }

    def save(self) -> None:
        (self.path / STATE_FILE).write_text(json.dumps(asdict(self), indent=2))


def load(directory: str | Path) -> Droplet | None:
    """The droplet recorded in `directory`; None if there is none. A state.json that is not
    a droplet's raises ValueError/TypeError/KeyError (the caller refuses the dir)."""
    state = Path(directory) / STATE_FILE
    if not state.exists():
        return None
    raw = json.loads(state.read_text())
    if raw.get("kind") != KIND:
        raise ValueError("not a droplet's state")
    return Droplet(**raw)


def make_keys(droplet: Droplet) -> str:
    """The operator key pair (like sandbox.py's); returns the public key line."""
    keys = droplet.key_path.parent
    keys.mkdir(mode=0o755, exist_ok=True)
    result = subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            f"staging-droplet-{droplet.name}",
            "-f",
            str(droplet.key_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StagingError(f"droplet: ssh-keygen failed: {result.stderr.strip()}")
    return droplet.key_path.with_suffix(".pub").read_text()


def _tls_settings(droplet: Droplet) -> str:
    """Without ACME, provision-all gives the fresh droplet a self-signed placeholder (not
    verified by the health checks); with pebble, certbot on the droplet gets certificates from
    it, and the health checks trust pebble's roots only."""
    packages = '["nginx", "postgresql", "git", "python3-venv"'
    if droplet.acme != "pebble":
        return f"""# No ACME here: provision-all makes a self-signed placeholder certificate.
acme = false
tls_verify = false
packages = {packages}]"""
    from devtools.droplet import acme

    return f"""# TLS from pebble, a local ACME server in the droplet's network namespace.
acme = true
acme_directory = "{acme.DIRECTORY_URL}"
acme_email = "{acme.EMAIL}"
acme_ca_bundle = "{acme.LISTENER_CA_IN_DROPLET}"
tls_ca = "{acme.roots_path(droplet.path)}"
packages = {packages}, "certbot"]"""


def inventory_text(droplet: Droplet, user: str = "root") -> str:
    slots = []
    for n in range(1, 11):
        slots.append(f"""[[slots]]
id = {n}
identifier = "staging-{n}"
subdomain = "staging-{n}.justapply.net"
ui_port = {5000 + n}
airflow_port = {8080 + n}
database = "job_search_staging_{n}"
role = "{"staging" if n == 10 else "qa"}"
host = "{droplet.name}"
""")
    return f"""# Generated by `invoke droplet.up`: a real Debian 12 droplet (systemd-nspawn) at
# {droplet.address}, nothing preinstalled; `invoke provision-all` installs what it needs.
[app]
name = "job-search"
repo_url = "{droplet.repo_url}"
requirements = ["requirements.txt"]
python = "/usr/bin/python3"
ui_command = "{{current}}/.venv/bin/python {{current}}/app.py ui"
airflow_webserver_command = "{{current}}/.venv/bin/python {{current}}/app.py airflow-webserver"
airflow_scheduler_command = "{{current}}/.venv/bin/python {{current}}/app.py airflow-scheduler"
migrate_command = "{{release}}/.venv/bin/python {{release}}/app.py migrate"
verify_timeout = 30
linear_url = "https://linear.app/justapply/issue"

[hosts.{droplet.name}]
address = "{droplet.address}"
port = 22
user = "{user}"
key_file = "{droplet.key_path}"
connect_timeout = 10
base_dir = "/srv/staging"
nginx_dir = "/etc/nginx"
systemd_dir = "/etc/systemd/system"
service_user = "staging"
{_tls_settings(droplet)}
postgres_port = 5432
nginx_test_command = "nginx -t"
nginx_reload_command = "systemctl reload nginx"

# Stands in for production: protected, never connected to.
[hosts.production]
address = "167.99.0.168"
protected = true

{chr(10).join(slots)}"""


def write_inventory(droplet: Droplet, user: str = "root", path: Path | None = None) -> Path:
    """Writes the inventory (to DIR/inventory.toml unless `path`), logging in as `user` (a
    non-root user needs passwordless sudo on the droplet: tests create one)."""
    target = path or droplet.inventory_path
    target.write_text(inventory_text(droplet, user))
    return target


def write_env(droplet: Droplet) -> None:
    lines = [f"export {k}={shlex.quote(v)}" for k, v in droplet.env().items()]
    droplet.env_path.write_text(
        "# source me: the droplet's settings for invoke tasks\n" + "\n".join(lines) + "\n"
    )
