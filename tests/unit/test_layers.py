"""The architecture as tests: the import-linter contracts in pyproject.toml hold, the house's
layers name top-level packages and modules of staging_ops (never a module inside a package),
each has one layer, and staging_ops' top-level packages import each other without a cycle or
an arrow pointing up."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from devtools.layers import (
    against_order,
    cycles,
    house_layers,
    package_graph,
    placement,
    up_arrows,
)

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


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


def test_every_top_level_unit_has_one_layer() -> None:
    """So a new package must be placed in the house (and the layers contract, which forbids
    imports upwards and between `|` siblings, then also rules out cycles through it); a package
    is placed whole, never module by module."""
    units = package_graph().units
    layers = house_layers()
    inside = [name for layer in layers for name in layer if name not in units]
    assert not inside, f"the layers contract names modules inside a package: {inside}"
    layer_of, split = placement(units, layers)
    assert not split, f"placed in several layers: {split}"
    missing = [u for u in units if u not in layer_of]
    assert not missing, f"place these in the layers contract of pyproject.toml: {missing}"


def test_the_dev_tooling_contract_names_devtools() -> None:
    forbidden = {
        module
        for contract in _config()["contracts"]
        if contract["type"] == "forbidden" and "staging_ops" in contract["source_modules"]
        for module in contract["forbidden_modules"]
    }
    assert "devtools" in forbidden


def test_no_cycles_and_no_arrow_up_between_top_level_packages() -> None:
    """Over the top-level units (lazy, function-level imports included: grimp sees them as
    import-linter does); `python -m devtools.layers` prints the same."""
    graph = package_graph()
    found = cycles(graph.edges)
    assert not found, "import cycles between top-level packages: " + "; ".join(
        " <-> ".join(c) for c in found
    )
    assert not up_arrows(graph.edges)
    layer_of, _ = placement(graph.units, house_layers())
    assert not against_order(graph.edges, layer_of)


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
