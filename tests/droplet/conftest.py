"""The droplet tests' fixtures: one real Debian 12 droplet (systemd-nspawn) per module.

Machines that cannot boot one (not root, no systemd-nspawn, ...) skip these tests with the
reason, unless STAGING_REQUIRE_DROPLET=1 (CI), where that is a failure."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import devtools.droplet as droplet_mod


def require_droplet_support() -> None:
    reason = droplet_mod.can_boot()
    if reason is None:
        return
    if os.environ.get("STAGING_REQUIRE_DROPLET") == "1":
        pytest.fail(f"STAGING_REQUIRE_DROPLET=1 but this machine cannot boot droplets: {reason}")
    pytest.skip(reason)


def droplet_dir(prefix: str) -> Path:
    # Not under pytest's 0700 tmp dirs: the postgres OS user must traverse the path.
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)
    return directory


# Per module: each module's droplet is down before the next one boots (one apt cache, less RAM).
@pytest.fixture(scope="module")
def droplet() -> Iterator[droplet_mod.Droplet]:
    """A fresh droplet for the module: nothing preinstalled, no apt lists yet."""
    require_droplet_support()
    directory = droplet_dir("staging-ops-droplet-")
    try:
        yield droplet_mod.up(directory)
    finally:
        droplet_mod.down(directory)
        shutil.rmtree(directory, ignore_errors=True)
