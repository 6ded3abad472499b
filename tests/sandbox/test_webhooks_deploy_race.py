"""A webhook release racing a deploy of the same slot, in the sandbox: the real deploy
(`invoke deploy`) and the real API server on the sandbox's registry. Whenever the release
lands, the end state is consistent: released, with the deploy refused at its claim check (or
finished before it), or deployed with the claim kept — never a claimed row without a task."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import requests

from staging_ops.registry import PostgresRegistry
from tests.conftest import INVOKE, ROOT
from tests.sandbox.api_server import wait_for
from tests.sandbox.slots import slot_for
from tests.sandbox.webhook_server import api_server, post_linear
from tests.webhook_fixtures import linear_done

SLOT = slot_for(__name__)


@pytest.mark.parametrize("moment", ["before-the-claim", "after-the-claim", "after-the-deploy"])
def test_a_release_racing_a_deploy_leaves_the_slot_consistent(
    sandbox, provisioned, moment: str
) -> None:
    task = {
        "before-the-claim": "JA-901",
        "after-the-claim": "JA-902",
        "after-the-deploy": "JA-903",
    }[moment]
    registry = PostgresRegistry(sandbox.registry_dsn)
    try:
        registry.release(SLOT, "test", force=True)
        with api_server(sandbox.registry_dsn, sandbox.inventory_path, workers=1) as server:

            def done() -> requests.Response:
                return post_linear(server, linear_done(task))

            deploy = subprocess.Popen(
                [INVOKE, "deploy", "--slot", str(SLOT), "--branch", "feat-x", "--task", task],
                cwd=ROOT,
                env={**os.environ, **sandbox.env()},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            answer = None
            if moment == "before-the-claim":
                answer = done()
            elif moment == "after-the-claim":
                wait_for(lambda: registry.get(SLOT).task == task, timeout=30)
                answer = done()
            out, err = deploy.communicate(timeout=240)
            if moment == "after-the-deploy":
                answer = done()
            assert answer is not None and answer.status_code in (200, 202), answer.text
            time.sleep(0.1)
            state = registry.get(SLOT)
            released = [
                e
                for e in registry.history(SLOT, 20)
                if e.action == "release" and e.via == "linear" and task in (e.detail or "")
            ]
            if state.claimed:
                # Deployed, the claim kept: the webhook came before there was a claim to free.
                assert state.task == task and state.owner, state
                assert deploy.returncode == 0, out + err
                assert state.branch == "feat-x" and not released
                assert answer.json()["applied"] is False
            else:
                assert (state.task, state.owner, state.claimed_at, state.expires_at) == (
                    None,
                    None,
                    None,
                    None,
                )
                assert len(released) == 1 and answer.json()["applied"] is True
                if deploy.returncode != 0:
                    # Refused where it checks the claim: recording the deploy on a freed slot.
                    assert "free" in err or "held by" in err, err
            if moment == "before-the-claim":
                assert state.claimed
            if moment == "after-the-claim":
                assert not state.claimed  # it was claimed when the webhook came: released
            if moment == "after-the-deploy":
                assert deploy.returncode == 0 and not state.claimed
    finally:
        registry.release(SLOT, "test", force=True)
        registry.close()
