"""What a sandbox is: its hosts, ports and directories, saved as DIR/state.json so `down` and
`status` can find it again."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SERVICE_USER = "staging-sandbox"
REGISTRY_DB = "staging_registry"
STATE_FILE = "state.json"


@dataclass
class SandboxHost:
    name: str
    ssh_port: int
    http_port: int
    https_port: int
    dir: str

    @property
    def root(self) -> Path:
        # Three levels below the sandbox keep docker-systemctl-replacement from warning.
        return Path(self.dir) / "root"

    @property
    def nginx_conf(self) -> Path:
        return self.root / "etc/nginx/nginx.conf"

    @property
    def nginx_prefix(self) -> Path:
        return self.root / "var/lib/nginx"

    def nginx_args(self) -> list[str]:
        return [
            "nginx",
            "-p",
            str(self.nginx_prefix),
            "-c",
            str(self.nginx_conf),
            "-e",
            str(self.root / "var/log/nginx/error.log"),
        ]


@dataclass
class Sandbox:
    """What `up` built; saved as DIR/state.json so `down` and `status` can find it again."""

    dir: str
    pg_port: int
    slot_port_offset: int
    slots: int
    hosts: list[SandboxHost]
    pids: dict[str, int] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    # The Staging API + Dashboard (`python -m staging_ops.web`); the secret signs its admin
    # JWTs (`invoke api.token`). A throwaway for this loopback-only sandbox, like its SSH keys.
    dashboard_port: int | None = None
    api_jwt_secret: str = ""
    # The server's webhook secrets (STAGING_GITHUB/LINEAR_WEBHOOK_SECRET), throwaways as well.
    github_webhook_secret: str = ""
    linear_webhook_secret: str = ""

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def inventory_path(self) -> Path:
        return self.path / "inventory.toml"

    @property
    def env_path(self) -> Path:
        return self.path / "env"

    @property
    def repo_path(self) -> Path:
        return self.path / "repo" / "sample-app.git"

    @property
    def key_path(self) -> Path:
        return self.path / "keys" / "id_ed25519"

    @property
    def ca_path(self) -> Path:
        return self.path / "tls" / "justapply.net.crt"

    @property
    def pg_socket_dir(self) -> Path:
        return self.path / "pg" / "run"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"

    @property
    def registry_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{REGISTRY_DB}"

    def env(self) -> dict[str, str]:
        return {
            "STAGING_INVENTORY": str(self.inventory_path),
            "STAGING_REGISTRY_DSN": self.registry_dsn,
            "STAGING_SANDBOX_REPO": str(self.repo_path),
            "STAGING_SANDBOX_DIR": str(self.path),
            **self.dashboard_env(),
        }

    def dashboard_env(self) -> dict[str, str]:
        if not self.dashboard_port:
            return {}
        return {
            "STAGING_API_JWT_SECRET": self.api_jwt_secret,
            "STAGING_GITHUB_WEBHOOK_SECRET": self.github_webhook_secret,
            "STAGING_LINEAR_WEBHOOK_SECRET": self.linear_webhook_secret,
            "STAGING_DASHBOARD_URL": f"http://127.0.0.1:{self.dashboard_port}/staging",
        }

    def save(self) -> None:
        (self.path / STATE_FILE).write_text(json.dumps(asdict(self), indent=2))


def load(directory: str | Path) -> Sandbox | None:
    state = Path(directory) / STATE_FILE
    if not state.exists():
        return None
    raw = json.loads(state.read_text())
    raw["hosts"] = [SandboxHost(**h) for h in raw["hosts"]]
    return Sandbox(**raw)


@dataclass(frozen=True)
class Ports:
    """Where a sandbox listens. Tests shift everything so they never meet a running demo."""

    base: int = 22200
    slot_offset: int = 0

    def ssh(self, index: int) -> int:
        return self.base + index

    def http(self, index: int) -> int:
        return self.base + 20 + index

    def https(self, index: int) -> int:
        return self.base + 40 + index

    @property
    def postgres(self) -> int:
        return self.base + 60

    @property
    def dashboard(self) -> int:
        return self.base + 80
