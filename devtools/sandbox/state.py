"""What a sandbox is: its hosts, ports and directories, saved as DIR/state.json so `down` and
`status` can find it again."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from devtools.envfile import DevDir, read_state

SERVICE_USER = "staging-sandbox"


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
class Sandbox(DevDir):
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
    def cgroup(self) -> str:
        """The cgroup every process of the sandbox runs in (devtools.cgroups), named for its
        directory so that sandboxes side by side never share one."""
        return "staging-ops-sandbox-" + hashlib.sha256(self.dir.encode()).hexdigest()[:12]

    @property
    def ca_path(self) -> Path:
        return self.path / "tls" / "justapply.net.crt"

    @property
    def pg_socket_dir(self) -> Path:
        return self.path / "pg" / "run"

    def env(self) -> dict[str, str]:
        return {
            **self.base_env(),
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


def load(directory: str | Path) -> Sandbox | None:
    raw = read_state(directory)
    if raw is None:
        return None
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
