"""Which way the claim modules may import, at module level (imports inside a function, or
under TYPE_CHECKING, run later or never and are left out): the registry uses the claim
vocabulary and rules, never the claim tasks; the claim tasks reach the droplet (deploy) only
lazily, for `release --stop`; deploy never imports the claim tasks, not even lazily."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import staging_ops

PACKAGE = Path(staging_ops.__file__).parent
VOCABULARY = {
    "staging_ops.slots.model",
    "staging_ops.slots.rules",
    "staging_ops.errors",
    "staging_ops.parsing",
}


def module_imports(path: Path) -> set[str]:
    """The staging_ops modules `path` imports when it is loaded."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("staging_ops"):
            found.add(node.module or "")
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("staging_ops")}
    return found


def imports_of(folder: str) -> dict[str, set[str]]:
    return {
        str(path.relative_to(PACKAGE)): module_imports(path)
        for path in sorted((PACKAGE / folder).rglob("*.py"))
    }


@pytest.mark.parametrize(("module", "imported"), sorted(imports_of("registry").items()))
def test_the_registry_uses_only_the_claim_vocabulary_and_rules(module, imported):
    claims = {m for m in imported if m.startswith("staging_ops.claims")}
    assert claims <= VOCABULARY, f"{module} imports {sorted(claims - VOCABULARY)}"
    assert not {m for m in imported if m.startswith(("staging_ops.deploy", "staging_ops.web"))}


@pytest.mark.parametrize(("module", "imported"), sorted(imports_of("claims").items()))
def test_claims_import_neither_the_registry_nor_deploy_nor_web(module, imported):
    above = ("staging_ops.registry", "staging_ops.deploy", "staging_ops.web")
    assert not {m for m in imported if m.startswith(above)}, module


@pytest.mark.parametrize("module", ["model.py", "rules.py"])
def test_the_vocabulary_and_rules_import_no_other_claim_module(module):
    imported = module_imports(PACKAGE / "slots" / module)
    assert {m for m in imported if m.startswith("staging_ops.")} <= VOCABULARY


@pytest.mark.parametrize("path", sorted((PACKAGE / "deploy").rglob("*.py")), ids=str)
def test_deploy_never_imports_the_claim_tasks_not_even_lazily(path):
    imported = {
        name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
        for name in (node.module or "", *(f"{node.module}.{a.name}" for a in node.names))
    }
    tasks = {"staging_ops.claims.service", "staging_ops.claims.reap", "staging_ops.claims.view"}
    assert not imported & tasks, f"{path.name} imports {sorted(imported & tasks)}"
