"""A sandbox for the real application: the sandbox droplet with the Campaign app's repository
(devtools/campaign_repo.py) and an inventory whose [app] and [app.env] are the shipped
inventory's, unchanged but for the repository, the interpreter the service user can run and
the verify budget. Shared by tests/sandbox/realapp and bench/bench_realapp.py.

Example::

    real = realapp.up(Path("/tmp/real"), sandbox.Ports(base=25600, slot_offset=3400))
    subprocess.run(["invoke", "deploy", "--slot", "3", "--branch", "main", "--task", "JA-3"],
                   env={**os.environ, **real.env()})
    realapp.down(real)
"""

from __future__ import annotations

import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from devtools import sandbox as sandbox_mod
from devtools.campaign_repo import build_campaign_repo

SHIPPED_INVENTORY = Path(__file__).resolve().parent.parent / "inventory" / "staging.toml"
# The commands and environment that must reach the sandbox exactly as shipped.
SHIPPED_KEYS = (
    "ui_command",
    "airflow_webserver_command",
    "airflow_scheduler_command",
    "migrate_command",
    "worker_uptime",
    "env",
)


@dataclass(frozen=True)
class RealApp:
    """The real app's sandbox: the campaign repository and the inventory that deploys it."""

    sandbox: sandbox_mod.Sandbox
    repo_path: Path
    inventory_path: Path

    def env(self) -> dict[str, str]:
        return {**self.sandbox.env(), "STAGING_INVENTORY": str(self.inventory_path)}

    @property
    def hosts(self) -> list[sandbox_mod.SandboxHost]:
        return self.sandbox.hosts


def shipped_app(repo: Path, verify_timeout: int = 60) -> str:
    """The shipped inventory's [app] and [app.env] tables, for `repo`, Debian's python3 (the
    service user cannot run root's pyenv) and `verify_timeout` (broken-web spends it all)."""
    text = SHIPPED_INVENTORY.read_text()
    block = text[text.index("[app]\n") : text.index("[hosts.")]
    block = re.sub(r'(?m)^repo_url = ".*"$', f'repo_url = "{repo}"', block)
    block = re.sub(r'(?m)^python = ".*"$', 'python = "/usr/bin/python3"', block)
    block = re.sub(r"(?m)^verify_timeout = .*$", f"verify_timeout = {verify_timeout}", block)
    shipped, ours = tomllib.loads(text)["app"], tomllib.loads(block)["app"]
    changed = [key for key in SHIPPED_KEYS if ours.get(key) != shipped.get(key)]
    if changed:
        raise AssertionError(f"the shipped [app] changed on the way: {changed}")
    return block


def up(directory: Path, ports: sandbox_mod.Ports, verify_timeout: int = 60) -> RealApp:
    """A sandbox in `directory` whose inventory deploys the campaign app."""
    box = sandbox_mod.up(directory, hosts=1, ports=ports)
    repo = directory / "git" / "campaign-app.git"
    build_campaign_repo(repo)
    text = box.inventory_path.read_text()
    start, end = text.index("[app]\n"), text.index("[hosts.")
    inventory = directory / "realapp.toml"
    inventory.write_text(text[:start] + shipped_app(repo, verify_timeout) + text[end:])
    return RealApp(box, repo, inventory)


def down(directory: Path) -> None:
    sandbox_mod.down(directory)
    shutil.rmtree(directory, ignore_errors=True)
