"""The architecture as tests: the import-linter contracts in pyproject.toml hold, every
top-level module of staging_ops has a layer in them, and staging_ops' top-level packages
import each other without a cycle."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

from devtools.layers import against_order, cycles, placement, up_arrows

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
# claims holds both the top of the house (service and view call deploy, provision and the
# registry; reap works through the registry) and its bottom (model: the SlotRegistry Protocol
# the registry implements; rules, which the registry enforces; owner, which deploy asks). Its
# modules are therefore placed one by one, not as one package.
SPLIT_PACKAGES = ("staging_ops.claims",)


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("staging_ops", cache_dir=None)


def _units(graph: grimp.ImportGraph) -> list[str]:
    """The top-level modules and packages of staging_ops, split packages by their modules."""
    units = []
    for child in sorted(graph.find_children("staging_ops")):
        if child in SPLIT_PACKAGES:
            units.extend(sorted(graph.find_children(child)))
        else:
            units.append(child)
    return units


def _unit_of(module: str, units: list[str]) -> str | None:
    for unit in units:
        if module == unit or module.startswith(unit + "."):
            return unit
    return None


def test_the_import_contracts_hold() -> None:
    """`lint-imports` from this venv, as scripts/test.sh runs it: a broken contract fails with
    the import chain that breaks it."""
    assert LINT_IMPORTS.exists(), f"{LINT_IMPORTS} missing: install the project's [test] extra"
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_every_top_level_module_has_a_layer() -> None:
    """So a new package must be placed in the house (and the layers contract, which forbids
    imports upwards and between `|` siblings, then also rules out cycles through it)."""
    layered = set()
    for contract in _config()["contracts"]:
        if contract["type"] == "layers":
            for layer in contract["layers"]:
                layered.update(part.strip() for part in layer.replace(":", "|").split("|"))
    missing = [u for u in _units(_graph()) if u not in layered]
    assert not missing, f"place these in the layers contract of pyproject.toml: {missing}"


def test_the_dev_tooling_contract_names_devtools() -> None:
    forbidden = {
        module
        for contract in _config()["contracts"]
        if contract["type"] == "forbidden" and "staging_ops" in contract["source_modules"]
        for module in contract["forbidden_modules"]
    }
    assert "devtools" in forbidden


def test_no_cycles_between_top_level_packages() -> None:
    """Tarjan's strongly connected components over the top-level units (lazy, function-level
    imports included: grimp sees them as import-linter does)."""
    graph = _graph()
    units = _units(graph)
    edges: dict[str, set[str]] = {u: set() for u in units}
    for module in graph.modules:
        source = _unit_of(module, units)
        if source is None:
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            target = _unit_of(imported, units)
            if target is not None and target != source:
                edges[source].add(target)
    found = cycles(edges)
    assert not found, "import cycles between top-level packages: " + "; ".join(
        " <-> ".join(c) for c in found
    )


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_up_arrows_are_the_fewest_edges_any_order_points_up() -> None:
    """a -> b -> c -> a needs one edge up whatever the order; a <-> b plus b <-> c, two; a
    second way back from c (c -> b besides c -> a) is still one edge in the best order."""
    assert len(up_arrows({"a": {"b"}, "b": {"c"}, "c": {"a"}})) == 1
    assert len(up_arrows({"a": {"b"}, "b": {"a", "c"}, "c": {"b"}})) == 2
    assert up_arrows({"a": {"b", "c"}, "b": {"c"}, "c": {"a"}}) == [("c", "a")]
    assert up_arrows({"a": {"b"}, "b": set()}) == []


def test_edges_against_the_layers_are_upward_or_between_siblings() -> None:
    layer_of, split = placement(
        ["p.top", "p.mid", "p.low", "p.two"],
        [["p.top"], ["p.mid", "p.two.x"], ["p.low", "p.two.y"]],
    )
    assert layer_of == {"p.top": 0, "p.mid": 1, "p.low": 2} and split == ["p.two"]
    edges = {"p.top": {"p.mid"}, "p.mid": {"p.top", "p.low"}, "p.low": {"p.mid", "p.two"}}
    assert against_order(edges, layer_of) == [("p.low", "p.mid"), ("p.mid", "p.top")]
