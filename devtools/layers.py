"""The package graph of staging_ops, and where it runs against the house's layers.

    python -m devtools.layers [--root staging_ops]

A unit is a top-level package or module of the root; an edge A -> B says some module of A
imports some module of B (at any depth, lazily or not: grimp sees what import-linter sees).
Prints the graph's size, its cycles, the up-arrows (the fewest edges that must point upward in
any top-to-bottom drawing of the units: a minimum feedback arc set, so the figure does not
depend on a chosen order) and the edges that break the order of the `layers` contract in
pyproject.toml (upward, or between siblings of one layer). A unit the contract places module by
module, in several layers, has no one place: it is listed, and its edges are not judged.
Exit 1 if there is a cycle or an edge against the contract, so it can gate.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

Edges = Mapping[str, set[str]]


@dataclass(frozen=True)
class PackageGraph:
    units: list[str]
    edges: dict[str, set[str]]
    # One module-level import behind each edge, to show where it comes from.
    witness: dict[tuple[str, str], tuple[str, str]]


def unit_of(module: str, units: Iterable[str]) -> str | None:
    for unit in units:
        if module == unit or module.startswith(unit + "."):
            return unit
    return None


def package_graph(root: str = "staging_ops") -> PackageGraph:
    import grimp  # dev-only: the [test] extra brings it, with import-linter

    graph = grimp.build_graph(root, cache_dir=None)
    units = sorted(graph.find_children(root))
    edges: dict[str, set[str]] = {u: set() for u in units}
    witness: dict[tuple[str, str], tuple[str, str]] = {}
    for module in sorted(graph.modules):
        source = unit_of(module, units)
        if source is None:
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            target = unit_of(imported, units)
            if target is not None and target != source:
                edges[source].add(target)
                witness.setdefault((source, target), (module, imported))
    return PackageGraph(units, edges, witness)


def cycles(edges: Edges) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one member, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def up_arrows(edges: Edges) -> list[tuple[str, str]]:
    """The fewest edges that point upward in the best top-to-bottom order of the units.

    Only edges inside a cycle can: per cycle (strongly connected component), a dynamic program
    over the subsets placed so far finds the order with the fewest upward edges (exact; the
    components here have a handful of members)."""
    arrows: list[tuple[str, str]] = []
    for component in cycles(edges):
        n = len(component)
        bit = {name: 1 << i for i, name in enumerate(component)}
        imports = [sum(bit[t] for t in edges.get(name, ()) if t in bit) for name in component]
        best: dict[int, tuple[int, int]] = {0: (0, -1)}  # placed set -> (cost, last placed)
        for placed in range(1 << n):
            if placed not in best:
                continue
            cost = best[placed][0]
            for i in range(n):
                if placed & (1 << i):
                    continue
                # Unit i goes below every placed unit: each of its imports among them points up.
                step = cost + (imports[i] & placed).bit_count()
                after = placed | (1 << i)
                if after not in best or step < best[after][0]:
                    best[after] = (step, i)
        order: list[str] = []
        placed = (1 << n) - 1
        while placed:
            last = best[placed][1]
            order.append(component[last])
            placed &= ~(1 << last)
        order.reverse()
        rank = {name: r for r, name in enumerate(order)}
        arrows += sorted(
            (a, b) for a in component for b in edges.get(a, ()) if b in rank and rank[b] < rank[a]
        )
    return arrows


def house_layers(pyproject: Path = ROOT / "pyproject.toml") -> list[list[str]]:
    """The layers of the `layers` contract over the whole product (the one without
    containers), top first, each a list of module names."""
    config = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]
    for contract in config["contracts"]:
        if contract["type"] == "layers" and not contract.get("containers"):
            return [
                [part.strip() for part in layer.replace(":", "|").split("|") if part.strip()]
                for layer in contract["layers"]
            ]
    raise SystemExit(f"{pyproject}: no layers contract over the whole product")


def placement(units: list[str], layers: list[list[str]]) -> tuple[dict[str, int], list[str]]:
    """Each unit's layer (0 = top), and the units the contract places in several layers."""
    seen: dict[str, set[int]] = {}
    for depth, layer in enumerate(layers):
        for name in layer:
            unit = unit_of(name, units)
            if unit is not None:
                seen.setdefault(unit, set()).add(depth)
    split = sorted(u for u, depths in seen.items() if len(depths) > 1)
    return {u: min(d) for u, d in seen.items() if len(d) == 1}, split


def against_order(edges: Edges, layer_of: Mapping[str, int]) -> list[tuple[str, str]]:
    """Edges to a unit in a higher layer, or to a sibling in the same one."""
    return sorted(
        (a, b)
        for a, targets in edges.items()
        for b in targets
        if a in layer_of and b in layer_of and layer_of[b] <= layer_of[a]
    )


def _short(name: str, root: str) -> str:
    return name.removeprefix(root + ".")


def report(root: str = "staging_ops") -> tuple[list[str], bool]:
    graph = package_graph(root)

    def edge(pair: tuple[str, str]) -> str:
        module, imported = graph.witness[pair]
        return (
            f"  {_short(pair[0], root)} -> {_short(pair[1], root)}"
            f"  ({_short(module, root)} imports {_short(imported, root)})"
        )

    found = cycles(graph.edges)
    arrows = up_arrows(graph.edges)
    layer_of, split = placement(graph.units, house_layers())
    wrong = against_order(graph.edges, layer_of)
    unplaced = sorted(set(graph.units) - set(layer_of) - set(split))
    lines = [
        f"package graph of {root}: {len(graph.units)} units, "
        f"{sum(map(len, graph.edges.values()))} edges",
        f"cycles: {len(found)}",
        *(f"  {' <-> '.join(_short(u, root) for u in c)}" for c in found),
        f"up-arrows (fewest edges pointing up in any order of the units): {len(arrows)}",
        *map(edge, arrows),
        f"edges against the layers contract: {len(wrong)}",
        *map(edge, wrong),
    ]
    if split:
        lines.append("placed module by module, in several layers (edges not judged): ")
        lines[-1] += ", ".join(_short(u, root) for u in split)
    if unplaced:
        lines.append("in no layer: " + ", ".join(_short(u, root) for u in unplaced))
    return lines, bool(found or wrong or unplaced)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="staging_ops")
    args = parser.parse_args(argv)
    lines, broken = report(args.root)
    print("\n".join(lines))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
