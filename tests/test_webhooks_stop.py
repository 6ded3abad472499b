"""`auto_release_stop = true`: a webhook's release also stops the slot's services, under its
deploy lock, as `invoke release --stop` does. The real deploy, the real API server and the
sandbox droplet's units; the default (off) leaves them serving."""

from __future__ import annotations

import pytest

from staging_ops.registry import PostgresRegistry
from tests.conftest import inventory_variant, run_invoke
from tests.test_deploy import commit_of, served
from tests.webhook_fixtures import linear_done
from tests.webhook_server import api_server, post_linear

SLOT = 8
REPOSITORY = 'github_repository = "justapply/job-search"\n'


def _deploy(sandbox, inventory, task: str) -> None:
    result = run_invoke(
        "deploy", "--slot", str(SLOT), "--branch", "feat-x", "--task", task,
        env={**sandbox.env(), "STAGING_INVENTORY": str(inventory)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert served(sandbox, SLOT) == commit_of(sandbox, "feat-x")


@pytest.mark.parametrize("stop", [True, False], ids=["auto_release_stop", "default"])
def test_a_done_task_frees_its_slot_and_stops_it_only_when_the_inventory_says_so(
    sandbox, provisioned, tmp_path, stop: bool
) -> None:
    task = "JA-881" if stop else "JA-882"
    setting = f"auto_release_stop = {str(stop).lower()}\n"
    inventory = inventory_variant(sandbox, tmp_path, (REPOSITORY, REPOSITORY + setting))
    _deploy(sandbox, inventory, task)
    registry = PostgresRegistry(sandbox.registry_dsn)
    try:
        with api_server(sandbox.registry_dsn, inventory, workers=1) as server:
            answer = post_linear(server, linear_done(task), timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["applied"] is True
        assert registry.get(SLOT).status == "free"
        (release,) = [e for e in registry.history(SLOT, 5) if e.action == "release"][:1]
        assert release.via == "linear" and task in (release.detail or "")
        outcome = answer.json()["slots"][0]
        if stop:
            # Nothing of the slot answers any more, and the answer says so.
            assert served(sandbox, SLOT) is None
            assert outcome["outcome"].startswith("released, stopped job-search-ui@"), outcome
        else:
            assert outcome["outcome"] == "released", outcome
            assert served(sandbox, SLOT) == commit_of(sandbox, "feat-x")
    finally:
        registry.close()
        run_invoke("release", "--slot", str(SLOT), "--force", "--stop", env=sandbox.env())
