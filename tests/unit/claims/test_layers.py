"""The claim use-cases reach the registry, the droplet (deploy: `release --stop`) and web only
from inside a function, so loading them (`invoke status` imports claims.view) loads none of
those. Which way the packages may import at all is the layers contract's (pyproject.toml,
tests/unit/test_layers.py); this is what it cannot say: when."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import staging_ops

PACKAGE = Path(staging_ops.__file__).parent


def module_imports(path: Path) -> set[str]:
    """The staging_ops modules `path` imports when it is loaded (imports inside a function, or
    under TYPE_CHECKING, run later or never and are left out)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("staging_ops"):
            found.add(node.module or "")
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("staging_ops")}
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "claims").rglob("*.py")), ids=str)
def test_claims_load_neither_the_registry_nor_deploy_nor_web(path):
    above = ("staging_ops.registry", "staging_ops.deploy", "staging_ops.web")
    assert not {m for m in module_imports(path) if m.startswith(above)}, path.name


def test_a_module_level_import_is_seen_and_a_lazy_one_is_not(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "from staging_ops.deploy.stop import stop_slot\n"
        "def f():\n    from staging_ops.registry import deliveries\n"
    )
    assert module_imports(source) == {"staging_ops.deploy.stop"}
