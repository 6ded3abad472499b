"""docs/staging-slots.md (the slot table) is generated from the inventory; the two must agree."""

from __future__ import annotations

from staging_ops.inventory import load_inventory
from staging_ops.slot_table import SLOT_TABLE, render_slot_table, write_slot_table
from tests.conftest import DEFAULT_INVENTORY, ROOT, run_invoke

DOC_PATH = ROOT / SLOT_TABLE


def test_committed_document_matches_inventory():
    expected = render_slot_table(load_inventory(DEFAULT_INVENTORY))
    assert DOC_PATH.read_text() == expected, "run `invoke registry-doc` and commit the result"


def test_document_has_every_slot_row_and_the_rules():
    text = render_slot_table(load_inventory(DEFAULT_INVENTORY))
    for n in range(1, 11):
        role = "staging" if n == 10 else "qa"
        assert (
            f"| {n} | `staging-{n}` | `staging-{n}.justapply.net` | {5000 + n} | {8080 + n} "
            f"| `job_search_staging_{n}` | {role} |"
        ) in text
    for needle in (
        "marts.staging_slots",
        "POST /api/staging/slots/<slot_id>/release",
        "One slot per task",
        "./scripts/deploy-staging.sh <slot-id> [branch]",
        "167.99.0.168",
    ):
        assert needle in text


def test_a_changed_inventory_makes_the_document_stale(tmp_path):
    changed = tmp_path / "inv.toml"
    changed.write_text(DEFAULT_INVENTORY.read_text().replace("ui_port = 5004", "ui_port = 6004"))
    result = run_invoke("registry-doc", "--check", env={"STAGING_INVENTORY": str(changed)})
    assert result.returncode == 1
    assert "out of date" in result.stderr
    doc = tmp_path / "doc.md"
    assert write_slot_table(load_inventory(changed), doc) is True
    assert "| 4 | `staging-4` | `staging-4.justapply.net` | 6004 |" in doc.read_text()
    assert write_slot_table(load_inventory(changed), doc) is False
