"""The deploy command the sandbox tests and the bench scripts share (devtools/deploys.py)."""

from devtools.deploys import deploy_args


def test_a_deploy_is_for_the_slots_own_task_with_extra_flags_last():
    assert deploy_args(4, "feat-x", "--json") == [
        "deploy", "--slot", "4", "--branch", "feat-x", "--task", "JA-4", "--json"
    ]  # fmt: skip
