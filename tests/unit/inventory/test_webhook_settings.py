"""`[app] github_repository` and `auto_release_stop`: defaults, the real inventory's values,
and refusals that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from staging_ops.errors import BadInput
from staging_ops.inventory import load_inventory
from tests.conftest import DEFAULT_INVENTORY

SETTINGS = 'github_repository = "justapply/job-search"\nauto_release_stop = false\n'


def variant(tmp_path: Path, settings: str) -> Path:
    text = DEFAULT_INVENTORY.read_text()
    assert SETTINGS in text
    path = tmp_path / "inventory.toml"
    path.write_text(text.replace(SETTINGS, settings))
    return path


def test_the_real_inventory_names_the_repository() -> None:
    app = load_inventory(DEFAULT_INVENTORY).app
    assert (app.github_repository, app.auto_release_stop) == ("justapply/job-search", False)


def test_defaults_are_no_repository_and_no_stop(tmp_path: Path) -> None:
    app = load_inventory(variant(tmp_path, "")).app
    assert (app.github_repository, app.auto_release_stop) == (None, False)


def test_stop_can_be_switched_on(tmp_path: Path) -> None:
    assert load_inventory(variant(tmp_path, "auto_release_stop = true\n")).app.auto_release_stop


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ('github_repository = "job-search"\n', "github_repository"),
        ('github_repository = "a/b/c"\n', "github_repository"),
        ('github_repository = "-x/y"\n', "github_repository"),
        ('github_repository = "x/.."\n', "github_repository"),
        ('github_repository = "x/y z"\n', "github_repository"),
        ("github_repository = 5\n", "github_repository"),
        ('auto_release_stop = "yes"\n', "auto_release_stop"),
    ],
)
def test_bad_settings_name_the_field(tmp_path: Path, settings: str, field: str) -> None:
    path = variant(tmp_path, settings)
    with pytest.raises(BadInput, match=f"{path}: \\[app\\]: field '{field}'"):
        load_inventory(path)
