"""Which slots of the shared test sandbox each test module uses: one table, checked when pytest
collects (tests/sandbox/conftest.py), and the one place a module takes its slot numbers from.

A pytest worker runs its modules one after the other on one sandbox, so a slot one module
leaves claimed, deployed or running is what the next module finds. A module's row says:

- `own`: slots it claims, deploys to, rolls back, releases or stops, and that no other module
  claims, deploys to, releases or stops: it may rely on what it left there (or on nothing
  having been left there at all).
- `shared`: slots it changes like that, after releasing them itself (`invoke release --force
  --stop`, the conftest's `module_slots` fixture, before its first test): it relies on no state
  an earlier module left, only on the slot being free and stopped when it starts.
- `reads`: slots it only looks at (status, logs, verify, rendered files that provision puts
  back within the test): any state is fine, so any module may share them.

Overlap, which fails collection: a slot in one module's `own` that is in another module's `own`
or `shared`. Modules that only read, and modules that clean a shared slot first, may share.
10 is the shared staging slot (`slots.shared_staging` in inventory/staging.toml)."""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SLOT_IDS = range(1, 11)


@dataclass(frozen=True)
class Row:
    own: frozenset[int] = frozenset()
    shared: frozenset[int] = frozenset()
    reads: frozenset[int] = frozenset()

    @property
    def changes(self) -> frozenset[int]:
        return self.own | self.shared

    @property
    def uses(self) -> frozenset[int]:
        return self.own | self.shared | self.reads


def row(own: Iterable[int] = (), shared: Iterable[int] = (), reads: Iterable[int] = ()) -> Row:
    return Row(frozenset(own), frozenset(shared), frozenset(reads))


# Module (file name without .py) -> its slots on the shared sandbox. A module not here changes
# no slot of it (it may use a registry database of its own, or a sandbox of its own).
TABLE: dict[str, Row] = {
    "test_deploy": row(own=[4], shared=[1, 7]),
    "test_deploy_lost_connection": row(own=[2]),
    "test_drift": row(own=[10]),
    "test_processes": row(shared=[1]),
    "test_memory": row(shared=[3]),
    "test_status_processes": row(shared=[3]),
    "test_deploy_safety": row(shared=[5]),
    "test_slot_lock": row(shared=[5]),
    "test_integrations": row(shared=[5, 6, 8]),
    "test_deploy_handover": row(shared=[6, 7]),
    "test_server_deploys": row(shared=[6, 9]),
    "test_dashboard_deploys": row(shared=[7]),
    "test_provision_reload": row(shared=[7]),
    "test_release_lock": row(shared=[8]),
    "test_webhooks_stop": row(shared=[8]),
    "test_deploy_fence": row(shared=[9]),
    "test_webhooks_deploy_race": row(shared=[9]),
    "test_provision": row(shared=[9], reads=[3, 5, 6, 7, 8]),
    # Provision's drift tests change rendered files and the slot directory's group, and put
    # them back with provision-all before the test ends.
    "test_provision_drift_and_failures": row(reads=[1, 3, 4, 5, 6]),
    "test_host_keys": row(reads=[1]),  # `invoke logs`
    "test_ssh_config": row(reads=[1]),  # `invoke logs`
}

# Modules whose slots are on a sandbox of their own (they never take the shared `sandbox`).
PRIVATE = frozenset({"test_slot_access"})


def module_key(module_name: str) -> str:
    """`tests.sandbox.test_deploy` -> `test_deploy`: the table's key."""
    return module_name.rsplit(".", 1)[-1]


def slots_for(module_name: str, table: Mapping[str, Row] = TABLE) -> tuple[int, ...]:
    """The slots a module changes, its `own` ones first, each group in order: how a module
    takes its SLOT constants (`SLOT, OTHER = slots_for(__name__)`)."""
    found = table[module_key(module_name)]
    return (*sorted(found.own), *sorted(found.shared))


def slot_for(module_name: str, table: Mapping[str, Row] = TABLE) -> int:
    """The one slot a module changes."""
    (only,) = slots_for(module_name, table)
    return only


def table_problems(table: Mapping[str, Row]) -> list[str]:
    """What is wrong with the table itself: slots that do not exist, and overlaps."""
    problems = []
    for name, found in table.items():
        if bad := sorted(found.uses - set(SLOT_IDS)):
            problems.append(f"{name} uses slot {bad[0]}, which the sandbox does not have")
        if both := sorted((found.own & found.shared) | (found.changes & found.reads)):
            problems.append(f"{name} lists slot {both[0]} twice")
    for name, found in table.items():
        for other, theirs in table.items():
            if other != name and (clash := sorted(found.own & theirs.changes)):
                problems.append(
                    f"slot {clash[0]} is owned by {name} but {other} changes it too: "
                    f"give one of them another slot, or make it shared in both"
                )
    return problems


# Constants that name slots: SLOT, SLOTS, FREE_SLOT, ... (SLOT_ID and the like are not slots).
_CONSTANT = re.compile(r"^(?:[A-Z0-9_]+_)?SLOTS?$")
# Calls that take a slot of the sandbox as a number.
_SLOT_CALLS = frozenset({"deploy", "served", "wait_served", "releases", "claim", "release"})


def slot_constants(namespace: Mapping[str, object]) -> dict[str, tuple[int, ...]]:
    """A module's slot constants (ints or tuples of ints), by name."""
    found = {}
    for name, value in namespace.items():
        if not _CONSTANT.match(name):
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            found[name] = (value,)
        elif isinstance(value, tuple) and all(isinstance(v, int) for v in value):
            found[name] = value
    return found


def literal_slots(source: str) -> set[int]:
    """Slot numbers written out in a module's code: `"--slot", "7"`, `"--slot=7"`, and a
    number given to deploy/served/claim/... (`deploy(box, "main", 7)`). Numbers that are no
    slot (`--slot 11`, bad input a test expects refused) are not uses."""
    found: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.List | ast.Tuple | ast.Call):
            values = node.args if isinstance(node, ast.Call) else node.elts
            for flag, value in itertools.pairwise(values):
                if _is_str(flag, "--slot") and _is_digits(value):
                    found.add(int(value.value))
        if _is_str(node) and (match := re.fullmatch(r"--slot=(\d+)", node.value)):
            found.add(int(match.group(1)))
        if isinstance(node, ast.Call) and _called(node) in _SLOT_CALLS:
            for arg in [*node.args, *(k.value for k in node.keywords if k.arg == "slot")]:
                if isinstance(arg, ast.Constant) and type(arg.value) is int:
                    found.add(arg.value)
    return found & set(SLOT_IDS)


def _is_str(node: ast.AST, text: str | None = None) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and (text is None or node.value == text)
    )


def _is_digits(node: ast.AST) -> bool:
    return _is_str(node) and node.value.isdigit()


def _called(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


@dataclass(frozen=True)
class ModuleUse:
    """What collection saw of one test module."""

    name: str
    constants: Mapping[str, tuple[int, ...]]
    literals: frozenset[int]
    # Any of its tests takes the shared sandbox after provision-all, as every test that
    # claims or deploys there does (a module on a registry database of its own does not).
    takes_provisioned: bool
    takes_sandbox: bool  # any of its tests takes the shared `sandbox` fixture at all


def module_problems(use: ModuleUse, table: Mapping[str, Row] = TABLE) -> list[str]:
    """A module that uses a slot its row does not list, or has no row while it uses slots."""
    if use.name in PRIVATE:
        if use.takes_sandbox:
            return [f"{use.name} is listed as on a sandbox of its own but takes the shared one"]
        return []
    used = dict(use.constants)
    if use.literals:
        used["a slot number in its code"] = tuple(sorted(use.literals))
    if not used or not use.takes_provisioned:
        return []
    found = table.get(use.name)
    if found is None:
        name, numbers = next(iter(used.items()))
        return [f"{use.name} uses slot {numbers[0]} ({name}) but has no row in {__name__}.TABLE"]
    for name, numbers in used.items():
        if outside := sorted(set(numbers) - found.uses):
            return [f"{use.name} uses slot {outside[0]} ({name}), which its row does not list"]
    return []
