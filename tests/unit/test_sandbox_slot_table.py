"""The sandbox tests' slot table (tests/sandbox/slots.py): what counts as an overlap, and how a
module's use of a slot is read from its code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sandbox import slots
from tests.sandbox.slots import ModuleUse, row

SANDBOX_TESTS = Path(slots.__file__).parent


def test_the_table_has_no_overlap_and_names_real_modules():
    assert slots.table_problems(slots.TABLE) == []
    for name in (*slots.TABLE, *slots.PRIVATE):
        assert (SANDBOX_TESTS / f"{name}.py").is_file(), name


def test_an_own_slot_changed_by_another_module_is_an_overlap():
    table = {"test_a": row(own=[3]), "test_b": row(shared=[3, 4])}
    (problem,) = [p for p in slots.table_problems(table) if "owned" in p]
    assert problem.startswith("slot 3 is owned by test_a but test_b changes it too")


@pytest.mark.parametrize(
    "table",
    [
        {"test_a": row(shared=[3]), "test_b": row(shared=[3])},  # each cleans it first
        {"test_a": row(own=[3]), "test_b": row(reads=[3])},
        {"test_a": row(reads=[3]), "test_b": row(reads=[3])},
    ],
)
def test_cleaned_shared_slots_and_reads_may_be_shared(table):
    assert slots.table_problems(table) == []


def test_a_slot_the_sandbox_lacks_or_listed_twice_is_refused():
    assert slots.table_problems({"test_a": row(own=[11])}) == [
        "test_a uses slot 11, which the sandbox does not have"
    ]
    assert slots.table_problems({"test_a": row(own=[2], reads=[2])}) == [
        "test_a lists slot 2 twice"
    ]


def test_a_module_takes_its_slots_own_first():
    table = {"test_a": row(own=[4], shared=[7, 1])}
    assert slots.slots_for("tests.sandbox.test_a", table) == (4, 1, 7)
    with pytest.raises(ValueError):
        slots.slot_for("tests.sandbox.test_a", table)


def test_slot_constants_are_read_by_name():
    namespace = {"SLOT": 4, "FREE_SLOT": 9, "SLOTS": (5, 6), "SLOT_ID": 901, "TASK": "JA-4"}
    assert slots.slot_constants(namespace) == {"SLOT": (4,), "FREE_SLOT": (9,), "SLOTS": (5, 6)}


def test_slot_numbers_written_in_code_are_found():
    source = """
run_invoke("deploy", "--slot", "7", "--branch", "main")
args = ["claim", "--slot=3", "--task=JA-1"]
deploy(box, "main", 6)
registry.release(slot=2)
run_invoke("deploy", "--slot", "11")  # no slot: bad input
run_invoke("deploy", "--slot", str(SLOT))
"""
    assert slots.literal_slots(source) == {2, 3, 6, 7}


def use(name: str, **kwargs) -> ModuleUse:
    given = {"constants": {}, "literals": frozenset(), "takes_provisioned": True}
    given |= {"takes_sandbox": True, **kwargs}
    return ModuleUse(name, **given)


def test_a_slot_outside_the_modules_row_is_one_line():
    table = {"test_a": row(own=[4], reads=[1])}
    assert slots.module_problems(use("test_a", constants={"SLOT": (4,)}), table) == []
    assert slots.module_problems(use("test_a", literals=frozenset({1})), table) == []
    assert slots.module_problems(use("test_a", constants={"SLOT": (5,)}), table) == [
        "test_a uses slot 5 (SLOT), which its row does not list"
    ]
    (problem,) = slots.module_problems(use("test_b", literals=frozenset({2})), table)
    assert problem.startswith("test_b uses slot 2 (a slot number in its code) but has no row")


def test_a_module_on_a_registry_or_sandbox_of_its_own_needs_no_row():
    own_registry = use("test_b", literals=frozenset({2}), takes_provisioned=False)
    assert slots.module_problems(own_registry) == []
    assert slots.module_problems(use("test_slot_access", constants={"SLOT": (1,)})) == [
        "test_slot_access is listed as on a sandbox of its own but takes the shared one"
    ]
    alone = use("test_slot_access", constants={"SLOT": (1,)}, takes_sandbox=False)
    assert slots.module_problems(alone) == []
