"""Which branch names a deploy takes, and the Linear task a branch is named after."""

from __future__ import annotations

import pytest

from staging_ops.errors import BadInput
from staging_ops.slots.branch import task_from_branch, validate_branch


@pytest.mark.parametrize(
    ("branch", "task"),
    [
        ("alice/ja-123-search", "JA-123"),
        ("JA-7", "JA-7"),
        ("feat/ops-42", "OPS-42"),
        ("ja123-search", None),  # a key has its dash
        ("v2-ja-9b", "JA-9"),  # letters first, then digits
        ("x/ja-12-y-ops-3", "JA-12"),  # the first key
        ("feat-x", None),
        ("main", None),
        ("release-2", "RELEASE-2"),
    ],
)
def test_task_from_branch(branch, task):
    assert task_from_branch(branch) == task


@pytest.mark.parametrize("branch", ["main", "feat-x", "alice/ja-1-x", "v1.2_rc"])
def test_valid_branches(branch):
    assert validate_branch(branch) == branch


@pytest.mark.parametrize(
    "branch",
    [
        "",
        "-x",
        "--upload-pack=evil",
        "a b",
        "a;b",
        "$(id)",
        'a"b',
        "a..b",  # our rule and git's
        "a/",  # git's rules: no trailing slash
        "a.lock",
        "a//b",
        "@",
    ],
)
def test_invalid_branches(branch):
    with pytest.raises(BadInput, match="invalid branch"):
        validate_branch(branch)
