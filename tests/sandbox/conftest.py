"""The slot table (tests/sandbox/slots.py) checked at collection, each module's shared slots
released before its first test, the dashboard tests' Chromium (`browser`) and a Staging API
on a database of its own (`api`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_invoke
from tests.sandbox import slots
from tests.sandbox.api_client import api  # noqa: F401 - the fixture, for every module
from tests.sandbox.dashboard_pages import browser  # noqa: F401 - the fixture, for every module

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    problems = slots.table_problems(slots.TABLE)
    by_module: dict[object, list[pytest.Item]] = {}
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and item.path.parent == HERE:
            by_module.setdefault(module, []).append(item)
    for module, its in by_module.items():
        fixtures = {name for item in its for name in item.fixturenames}
        use = slots.ModuleUse(
            name=slots.module_key(module.__name__),
            constants=slots.slot_constants(vars(module)),
            literals=frozenset(slots.literal_slots(Path(module.__file__).read_text())),
            takes_provisioned="provisioned" in fixtures,
            takes_sandbox="sandbox" in fixtures,
        )
        problems += slots.module_problems(use)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise pytest.UsageError(f"tests/sandbox/slots.py: {problems[0]}{more}")


@pytest.fixture(scope="module", autouse=True)
def module_slots(request: pytest.FixtureRequest) -> slots.Row | None:
    """The module's row; its shared slots released and stopped with the toolkit's own release,
    whatever an earlier module on this sandbox left there (own slots are left as they are)."""
    found = slots.TABLE.get(slots.module_key(request.module.__name__))
    if found is None or not found.shared:
        return found
    request.getfixturevalue("provisioned")
    sandbox = request.getfixturevalue("sandbox")
    for slot in sorted(found.shared):
        freed = run_invoke("release", "--slot", str(slot), "--force", "--stop", env=sandbox.env())
        assert freed.returncode == 0, freed.stdout + freed.stderr
    return found
