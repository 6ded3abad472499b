"""The test folders say what their tests need: every test module is in tests/unit (no host),
tests/sandbox (the sandbox) or tests/droplet (a real droplet), and carries that marker."""

from __future__ import annotations

import tomllib

from tests.conftest import FOLDERS, REALAPP, ROOT, markers_for

TESTS = ROOT / "tests"


def test_every_test_module_is_in_a_folder_that_says_what_it_needs():
    stray = [
        str(path.relative_to(ROOT))
        for path in TESTS.rglob("test_*.py")
        if path.relative_to(TESTS).parts[0] not in FOLDERS
    ]
    assert stray == [], "move each into tests/unit, tests/sandbox or tests/droplet"


def test_each_folder_and_the_real_app_have_their_marker_registered():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    registered = {line.split(":")[0] for line in options["ini_options"]["markers"]}
    assert registered == {*FOLDERS, REALAPP}


def test_a_module_is_marked_by_its_folder_and_the_real_app_by_its_name():
    assert markers_for(TESTS / "unit" / "deploy" / "test_branch.py") == ["unit"]
    assert markers_for(TESTS / "sandbox" / "test_deploy.py") == ["sandbox"]
    assert markers_for(TESTS / "sandbox" / "realapp" / "test_x.py") == ["sandbox", REALAPP]
    assert markers_for(TESTS / "droplet" / "test_realapp_droplet.py") == ["droplet", REALAPP]
    assert markers_for(TESTS / "test_stray.py") == []
    assert markers_for(ROOT / "bench" / "test_elsewhere.py") == []
