"""What a dev droplet's directory holds for the operator, one shape for the sandbox and the
nspawn droplet: state.json (so `down` and `status` find everything again), env (sourced for the
invoke tasks), the operator's SSH key, and the inventory parts both write the same ([app], the
slots, the protected production host)."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from staging_ops.errors import BadInput, StagingError

STATE_FILE = "state.json"
REGISTRY_DB = "staging_registry"


class DevDir:
    """The paths and settings a dataclass with `dir` (its directory) and `pg_port` (its
    registry's PostgreSQL on loopback) derives from them."""

    dir: str
    pg_port: int

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
    def known_hosts_path(self) -> Path:
        """The host keys of the dir's hosts, recorded when they start (their inventory names
        this file, so connections check the keys as on a real droplet)."""
        return self.path / "keys" / "known_hosts"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"

    @property
    def registry_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{REGISTRY_DB}"

    def base_env(self) -> dict[str, str]:
        """The settings every invoke task needs: which inventory, registry and sample repo."""
        return {
            "STAGING_INVENTORY": str(self.inventory_path),
            "STAGING_REGISTRY_DSN": self.registry_dsn,
            "STAGING_SANDBOX_REPO": str(self.repo_path),
        }

    def save(self) -> None:
        (self.path / STATE_FILE).write_text(json.dumps(asdict(self), indent=2))


def write_known_hosts(path: Path, entries: list[tuple[str, str]]) -> None:
    """A known_hosts file of (name, public key line `type base64 [comment]`) entries: the
    keys the dev tooling generated itself or read from the droplet's disk, never learnt over
    the network."""
    lines = [f"{name} {' '.join(key.split()[:2])}\n" for name, key in entries]
    path.write_text("".join(lines))
    path.chmod(0o644)


def read_state(directory: str | Path) -> dict[str, Any] | None:
    """DIR/state.json as saved; None when there is none."""
    state = Path(directory) / STATE_FILE
    if not state.exists():
        return None
    return json.loads(state.read_text())


def check_replaceable(path: Path, what: str, load: Callable[[Path], object]) -> None:
    """`up` deletes `path` and starts afresh there: allowed only for a directory that holds a
    `what` (a state.json that `load` reads) or nothing at all. Anything else (a checkout, a
    home directory) is refused before it is touched."""
    if path == Path("/") or path == Path.home():
        raise BadInput(f"refusing to use {path} as a {what} directory")
    if not path.exists():
        return
    if not path.is_dir():
        raise BadInput(f"refusing to use {path} as a {what} directory: it is not a directory")
    if (path / STATE_FILE).is_file():
        try:
            load(path)
        except (OSError, ValueError, TypeError, KeyError):
            raise BadInput(
                f"refusing to use {path} as a {what} directory: its {STATE_FILE} is not "
                f"a {what}'s (remove the directory yourself if it is one)"
            ) from None
        return
    try:
        empty = next(path.iterdir(), None) is None
    except OSError as exc:
        raise BadInput(f"refusing to use {path} as a {what} directory: {exc.strerror}") from None
    if not empty:
        raise BadInput(
            f"refusing to use {path} as a {what} directory: it is not empty and holds no "
            f"{what} ({STATE_FILE}); choose an empty or new directory"
        )


def write_env(path: Path, env: dict[str, str], whose: str) -> None:
    """`env` as a file of `export` lines to source."""
    lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    path.write_text(
        f"# source me: the {whose}'s settings for invoke tasks\n" + "\n".join(lines) + "\n"
    )


def ssh_keygen(path: Path, comment: str, whose: str) -> None:
    """An ed25519 key pair without a passphrase at `path` (and `path`.pub)."""
    result = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StagingError(f"{whose}: ssh-keygen failed: {result.stderr.strip()}")


def app_block(repo_url: str, extra: str = "") -> str:
    """The inventory's [app] table for examples/sample-app at `repo_url`."""
    return f"""[app]
name = "job-search"
repo_url = "{repo_url}"
requirements = ["requirements.txt"]
python = "/usr/bin/python3"
ui_command = "{{current}}/.venv/bin/python {{current}}/app.py ui"
airflow_webserver_command = "{{current}}/.venv/bin/python {{current}}/app.py airflow-webserver"
airflow_scheduler_command = "{{current}}/.venv/bin/python {{current}}/app.py airflow-scheduler"
migrate_command = "{{release}}/.venv/bin/python {{release}}/app.py migrate"
verify_timeout = 30
linear_url = "https://linear.app/justapply/issue"
{extra}"""


PRODUCTION_BLOCK = """# Stands in for production: protected, never connected to.
[hosts.production]
address = "167.99.0.168"
protected = true
"""


def slot_block(n: int, host: str, port_offset: int = 0, subdomain: str | None = None) -> str:
    """One [[slots]] entry: slot N on `host` (slot 10 is the staging one)."""
    return f"""[[slots]]
id = {n}
identifier = "staging-{n}"
subdomain = "{subdomain or f"staging-{n}.justapply.net"}"
ui_port = {5000 + n + port_offset}
airflow_port = {8080 + n + port_offset}
database = "job_search_staging_{n}"
role = "{"staging" if n == 10 else "qa"}"
host = "{host}"
"""


def slot_blocks(count: int, host_of: Callable[[int], str], port_offset: int = 0) -> str:
    """[[slots]] 1..`count`, slot N on host `host_of(N)`."""
    return "\n".join(slot_block(n, host_of(n), port_offset) for n in range(1, count + 1))
