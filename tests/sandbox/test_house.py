"""An installed wheel works: built from a copy of the project and installed (not editable)
into a directory of its own, it renders every template as the source tree does, carries the
remote scripts and the probe, runs `invoke --list` and `invoke render` for an operator's
checkout, and ships no dev tooling."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from staging_ops.inventory import load_inventory
from staging_ops.render import render_host, render_release_env
from tests.conftest import DEFAULT_INVENTORY, INVOKE, ROOT

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
# What the child Python prints: the installed package's view of itself.
PROBE = """
import json, sys
from pathlib import Path
import staging_ops
from staging_ops.inventory import load_inventory
from staging_ops.remote import facts, scripts
from staging_ops.render import render_host, render_release_env

inventory = load_inventory(sys.argv[1])
rendered = {
    host.name: {path: [f.content, f.mode] for path, f in render_host(inventory, host).items()}
    for host in inventory.target_hosts()
}
print(json.dumps({
    "file": staging_ops.__file__,
    "rendered": rendered,
    "release_env": render_release_env("abc1234", "feat-x", "2024-01-01T00:00:00Z"),
    "scripts_dir": str(scripts.SCRIPTS),
    "scripts": {p.name: scripts.script_text(p.name) for p in sorted(scripts.SCRIPTS.glob("*.sh"))},
    "probe": str(Path(facts.__file__).with_name("probe.py")),
    "probe_loaded": bool(facts._FACTS_SCRIPT),
}))
"""


def _can_build_a_wheel() -> str | None:
    """Why pip cannot build our wheel offline (no isolation: setuptools from this venv), or
    None. setuptools before 70.1 needs the `wheel` package for bdist_wheel."""
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed in this venv"
    import setuptools

    major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
    if (major, minor) < (70, 1) and importlib.util.find_spec("wheel") is None:
        return (
            f"setuptools {setuptools.__version__} needs the `wheel` package to build a wheel "
            "offline; `pip install -e '.[test]'` installs it"
        )
    return None


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240, **kwargs)
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    reason = _can_build_a_wheel()
    if reason:
        pytest.skip(f"cannot build the wheel: {reason}")
    work = tmp_path_factory.mktemp("house")
    # A copy, so the build's build/ and *.egg-info never land in the checkout; devtools comes
    # along to prove the wheel leaves it out.
    source = work / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("staging_ops", "devtools"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    wheels = work / "wheels"
    _run(
        [*PIP, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), f"{source}/"]
    )
    (wheel,) = wheels.glob("staging_ops-*.whl")
    target = work / "site"
    _run([*PIP, "install", "-q", "--no-deps", "--no-index", "--target", str(target), str(wheel)])
    # An operator's checkout without the product's sources: invoke must import the installed
    # package. tasks.py imports devtools (the sandbox tasks), which is checkout, not product.
    checkout = work / "checkout"
    checkout.mkdir()
    shutil.copy2(ROOT / "tasks.py", checkout / "tasks.py")
    shutil.copytree(ROOT / "inventory", checkout / "inventory")
    shutil.copytree(ROOT / "devtools", checkout / "devtools", ignore=ignore)
    return {"wheel": wheel, "site": target, "checkout": checkout, "clean": work}


def _env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGING_")}
    # Only the installed package: not this checkout (pytest's pythonpath, a worktree's
    # PYTHONPATH); the venv's site-packages still bring the dependencies.
    env["PYTHONPATH"] = str(site)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def test_the_wheel_ships_the_product_and_no_dev_tooling(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert not [n for n in names if n.startswith(("devtools/", "tests/"))], names
    assert "staging_ops/remote/probe.py" in names
    assert any(n.startswith("staging_ops/render/templates/nginx/") for n in names)
    assert any(n.startswith("staging_ops/render/templates/systemd/") for n in names)
    assert "staging_ops/web/templates/dashboard.html" in names
    shipped = {Path(n).name for n in names if n.startswith("staging_ops/remote/scripts/")}
    assert shipped == {p.name for p in (ROOT / "staging_ops/remote/scripts").glob("*.sh")}


def test_the_installed_package_renders_every_template_as_the_source_does(installed):
    site = installed["site"]
    result = _run(
        [sys.executable, "-c", PROBE, str(DEFAULT_INVENTORY)],
        cwd=installed["clean"],
        env=_env(site),
    )
    seen = json.loads(result.stdout)
    assert Path(seen["file"]).is_relative_to(site), seen["file"]
    inventory = load_inventory(DEFAULT_INVENTORY)
    expected = {
        host.name: {path: [f.content, f.mode] for path, f in render_host(inventory, host).items()}
        for host in inventory.target_hosts()
    }
    assert expected and seen["rendered"] == expected
    assert seen["release_env"] == render_release_env("abc1234", "feat-x", "2024-01-01T00:00:00Z")
    assert Path(seen["scripts_dir"]).is_relative_to(site)
    sources = {
        p.name: p.read_text() for p in sorted((ROOT / "staging_ops/remote/scripts").glob("*.sh"))
    }
    assert seen["scripts"] == sources
    assert Path(seen["probe"]).is_relative_to(site) and Path(seen["probe"]).is_file()
    assert seen["probe_loaded"]


def test_invoke_runs_the_checkouts_tasks_on_the_installed_package(installed):
    env = _env(installed["site"])
    listed = _run([INVOKE, "--list"], cwd=installed["checkout"], env=env).stdout
    for name in ("provision-all", "deploy", "claim", "render", "sandbox.up", "droplet.up"):
        assert name in listed, listed
    rendered = _run([INVOKE, "render", "--slot", "4"], cwd=installed["checkout"], env=env).stdout
    assert "server_name staging-4.justapply.net;" in rendered
    where = _run(
        [sys.executable, "-c", "import staging_ops; print(staging_ops.__file__)"],
        cwd=installed["checkout"],
        env=env,
    ).stdout
    assert Path(where.strip()).is_relative_to(installed["site"])
