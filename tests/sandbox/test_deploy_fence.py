"""Deploy, rollback and release of one slot at the same time, on the real sandbox and on both
registry backends (PostgreSQL directly, and the Staging API server on it): whatever the
interleaving, the end state is one the registry describes truthfully (claim.py's fence) —
released, with nothing of the deploy serving or what serves recorded, or deployed with the
claim kept — checked at every moment on the registry, the droplet's `current` and what
/api/version serves through nginx. And a deploy of a branch that does not exist changes
nothing.

A plain release lands at an exact moment: right after the deploy prints a step's line (the
next step runs), in-process through the backend (claims.service.release, what `invoke
release` runs), so every phase of a deploy is reached on any machine's speed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.sample_repo import push_branch
from staging_ops.claims import service as claims
from staging_ops.inventory import load_inventory
from staging_ops.registry import PostgresRegistry
from staging_ops.registry.api_client import ApiRegistry
from staging_ops.slots.model import SlotState
from tests.conftest import INVOKE, ROOT, run_invoke
from tests.sandbox.deploying import commit_of, deploy, served, wait_for_step, wait_served
from tests.sandbox.slots import slot_for
from tests.sandbox.webhook_server import GITHUB_SECRET, api_server
from tests.webhook_fixtures import github_headers, merged_pr

SLOT = slot_for(__name__)
TASK = f"JA-{SLOT}"
REGISTRY_VARS = ("STAGING_REGISTRY_DSN", "STAGING_API_URL", "STAGING_API_TOKEN")
# The deploy's steps as printed (recipes.py), each a moment to release at; "start" is before
# the deploy's process has read anything.
DEPLOY_MOMENTS = (
    "start",
    "claim",
    "connect",
    "lock",
    "fetch",
    "hold claim",
    "export + venv",
    "migrate",
    "candidate start",
    "candidate verify",
    "check live",
    "switch",
    "hand-over",
    "main verify",
    "candidate stop + scheduler restart",
    "record",
)
# Moments whose outcome is certain (the next step takes long enough for the release to land
# inside it): refused at the claim check's successor, at the fence, after the switch, after.
CERTAIN = {
    "start": "deployed",
    "candidate start": "refused at the fence",
    "hand-over": "recorded what serves",
    "record": "released after",
}


@dataclass
class Backend:
    name: str
    env: dict[str, str]  # an operator's environment for this backend
    registry: Any  # the same backend in process: reads, and a release at an exact moment


@pytest.fixture(scope="module")
def box(sandbox, provisioned):
    first = deploy(sandbox, "main", SLOT)
    assert first.returncode == 0, first.stdout + first.stderr
    return sandbox


@pytest.fixture(scope="module", params=["postgres", "api"])
def backend(request, box) -> Iterator[Backend]:
    base = {k: v for k, v in os.environ.items() if k not in REGISTRY_VARS}
    if request.param == "postgres":
        registry = PostgresRegistry(box.registry_dsn)
        yield Backend("postgres", {**base, **box.env()}, registry)
        registry.close()
        return
    with api_server(box.registry_dsn, box.inventory_path, workers=1) as server:
        env = {k: v for k, v in box.env().items() if k not in REGISTRY_VARS}
        env |= {"STAGING_API_URL": server.url, "STAGING_API_TOKEN": server.token}
        registry = ApiRegistry(server.url, server.token)
        yield Backend("api", {**base, **env}, registry)
        registry.close()


def row(backend: Backend) -> SlotState:
    return backend.registry.get(SLOT)


def actions(backend: Backend) -> list[tuple[str, str]]:
    """The slot's events, newest first: (action, detail)."""
    return [(e.action, e.detail or "") for e in backend.registry.history(SLOT, limit=20)]


def current_commit(box) -> str | None:
    """The commit of the release `current` points to on the droplet (None: no link)."""
    link = box.hosts[0].root / f"srv/staging/staging-{SLOT}/current"
    if not link.is_symlink():
        return None
    env = (link.parent / os.readlink(link) / ".release-env").read_text()
    return next(
        line.split("=", 1)[1].strip('"')
        for line in env.splitlines()
        if line.startswith("DEPLOYED_COMMIT=")
    )


def start(backend: Backend, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [INVOKE, *args, "--slot", str(SLOT), "--task", TASK],
        cwd=ROOT,
        env={**backend.env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def release_now(box, backend: Backend) -> None:
    """What `invoke release --slot 9 --task JA-9` does, at this moment."""
    inventory = load_inventory(box.inventory_path)
    outcome = claims.release(backend.registry, inventory, SLOT, by="qa@example.com", task=TASK)
    assert outcome.result.released, outcome


def reclaim(backend: Backend) -> None:
    if not row(backend).claimed:
        backend.registry.claim(SLOT, TASK, "qa@example.com", timedelta(days=7))


def other_branch(box) -> str:
    """main or feat-x, whichever `current` is not: a deploy of it changes what serves."""
    return "feat-x" if current_commit(box) == commit_of(box, "main") else "main"


def assert_truthful(
    box, backend: Backend, code: int, out: str, commit: str, before: str | None
) -> str:
    """The end state must be one the registry describes truthfully; which one it is.

    `commit` is the run's, `before` what served before it. Whatever the end, the registry's
    commit is the one `current` points to and nginx serves (or, nothing current, the slot is
    free and nothing serves). Deployed: the claim kept, or released after the run recorded
    itself. Refused (exit 3): the slot is free, and either nothing was switched (`before`
    serves) or the run's release serves and the registry recorded it as what serves."""
    assert code in (0, 3), out
    assert "Traceback" not in out, out
    state, live = row(backend), current_commit(box)
    if live is None:
        assert not state.claimed and served(box, SLOT) is None, (state, out)
        return "stopped"
    assert wait_served(box, SLOT) == live, out  # through nginx
    assert state.commit == live, (state, live, out)
    events = actions(backend)
    if code == 0:
        assert live == commit, out
        mine = next(i for i, (action, _) in enumerate(events) if action == "deploy")
        assert "serving" not in events[mine][1], events[mine]
        if state.claimed:
            assert state.task == TASK, (state, out)
            return "deployed"
        assert any(a == "release" for a, _ in events[:mine]), (events[:3], out)
        return "released after"
    assert not state.claimed, (state, out)
    if "nothing was switched" in out:
        assert live == before, out
        return "refused at the fence"
    assert live == commit and "serves, verified, but" in out, out
    recorded = next(detail for action, detail in events if action == "deploy")
    assert "(serving, claim untouched)" in recorded, events[:3]
    return "recorded what serves"


def test_a_branch_that_does_not_exist_changes_nothing(box, backend):
    reclaim(backend)
    before, events = row(backend), actions(backend)
    result = run_invoke(
        "deploy", "--slot", str(SLOT), "--branch", "no-such-branch", "--task", TASK, env=backend.env
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "branch not found: 'no-such-branch'" in result.stderr
    assert "nothing was switched" in result.stderr
    assert row(backend) == before and actions(backend) == events  # not even the claim renewed
    # A free slot stays free.
    release_now(box, backend)
    before, events = row(backend), actions(backend)
    result = run_invoke(
        "deploy", "--slot", str(SLOT), "--branch", "no-such-branch", "--task", TASK, env=backend.env
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert row(backend) == before and actions(backend) == events and not before.claimed
    reclaim(backend)


@pytest.mark.parametrize("moment", DEPLOY_MOMENTS)
def test_a_release_at_any_step_of_a_deploy_leaves_the_registry_truthful(box, backend, moment):
    reclaim(backend)
    branch, before = other_branch(box), current_commit(box)
    process = start(backend, "deploy", "--branch", branch)
    lines = wait_for_step(process, moment)
    release_now(box, backend)
    out, err = process.communicate(timeout=120)
    said = "".join(lines) + out + err
    end = assert_truthful(box, backend, process.returncode, said, commit_of(box, branch), before)
    assert end != "stopped", said
    assert end == CERTAIN.get(moment, end), said


# `release --stop` first (0 s: the deploy meets its lock, exit 3, nothing written; later: it
# comes after the stop and claims the free slot), then the deploy first (the stop waits for
# its lock, or is refused changing nothing, then stops what the deploy recorded).
@pytest.mark.parametrize(
    "first",
    [
        "stop+0",
        "stop+0.3",
        "stop+1.0",
        "deploy:lock",
        "deploy:migrate",
        "deploy:switch",
        "deploy:main verify",
        "deploy:record",
    ],
)
def test_release_stop_and_a_deploy_end_in_one_truthful_state(box, backend, first):
    """Both take the slot's lock before they write: released and stopped, or deployed."""
    reclaim(backend)
    branch, before = other_branch(box), current_commit(box)
    if first.startswith("stop"):
        stopper = start(backend, "release", "--stop")
        time.sleep(float(first.split("+")[1]))
        process = start(backend, "deploy", "--branch", branch)
        lines = []
    else:
        process = start(backend, "deploy", "--branch", branch)
        lines = wait_for_step(process, first.split(":")[1])
        stopper = start(backend, "release", "--stop")
    out, err = process.communicate(timeout=120)
    stop_out, stop_err = stopper.communicate(timeout=120)
    said = "".join(lines) + out + err
    assert stopper.returncode in (0, 3), stop_out + stop_err
    end = assert_truthful(box, backend, process.returncode, said, commit_of(box, branch), before)
    if process.returncode == 3:
        assert "a deploy is already running" in err, said
    if stopper.returncode == 0:
        # Stopped: nothing serves, unless the deploy came after the stop and claimed the slot.
        assert end in ("stopped", "deployed"), (end, said)
        if end == "stopped":
            assert process.returncode == 3 or actions(backend)[0][0] == "release", said


@pytest.fixture(scope="module")
def two_releases(box, backend) -> dict[str, str]:
    """A verified release of each branch, to roll back to each in turn: release → commit."""
    reclaim(backend)
    made = {}
    for branch in ("feat-x", "main"):
        result = run_invoke(
            "deploy", "--slot", str(SLOT), "--branch", branch, "--task", TASK, env=backend.env
        )
        assert result.returncode == 0, result.stdout + result.stderr
        link = box.hosts[0].root / f"srv/staging/staging-{SLOT}/current"
        made[Path(os.readlink(link)).name] = commit_of(box, branch)
    return made


@pytest.mark.parametrize("moment", ["start", "candidate start", "hand-over", "record"])
def test_a_release_at_any_step_of_a_rollback_leaves_the_registry_truthful(
    box, backend, two_releases, moment
):
    reclaim(backend)
    before = current_commit(box)
    target = next(r for r, c in two_releases.items() if c != before)
    process = start(backend, "rollback", "--to", target)
    lines = wait_for_step(process, moment)
    release_now(box, backend)
    out, err = process.communicate(timeout=120)
    said = "".join(lines) + out + err
    if moment == "start":  # rollback never claims: a free slot is refused, nothing changed
        assert process.returncode == 3 and "is free: claim it first" in err, said
        assert current_commit(box) == before and row(backend).commit == before
        return
    end = assert_truthful(box, backend, process.returncode, said, two_releases[target], before)
    assert end == CERTAIN[moment], said


def test_a_forced_rollback_of_a_free_slot_records_what_serves(box, backend, two_releases):
    reclaim(backend)
    before = current_commit(box)
    target = next(r for r, c in two_releases.items() if c != before)
    release_now(box, backend)
    forced = run_invoke("rollback", "--slot", str(SLOT), "--to", target, "--force", env=backend.env)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    state, live = row(backend), current_commit(box)
    assert live == two_releases[target] and wait_served(box, SLOT) == live
    assert not state.claimed and state.commit == live
    reclaim(backend)


def test_a_deploy_never_claims_again_a_slot_freed_by_the_merge_of_its_branch(box, backend):
    """The slot's task has deployed its branch; a new commit of it is being deployed (paused
    with SIGSTOP during `fetch`, between the claim check and `hold claim`) when GitHub's
    merged-PR webhook (the real route on the real server) frees the slot. The deploy must not
    claim the freed slot again for the merged branch: exit 3, one line saying so, nothing
    switched, the slot left free."""
    branch = f"ja-{SLOT}-merge-{backend.name}"
    reclaim(backend)
    push_branch(box.repo_path, branch, {"NOTE.txt": "first\n"})
    first = run_invoke(
        "deploy", "--slot", str(SLOT), "--branch", branch, "--task", TASK, env=backend.env
    )
    assert first.returncode == 0, first.stdout + first.stderr
    before = current_commit(box)
    push_branch(box.repo_path, branch, {"NOTE.txt": "second\n"})
    process = start(backend, "deploy", "--branch", branch)
    try:
        wait_for_step(process, "lock")  # `fetch` runs now; `hold claim` comes after it
        os.kill(process.pid, signal.SIGSTOP)
        with api_server(box.registry_dsn, box.inventory_path, workers=1) as server:
            body = json.dumps(merged_pr(branch, number=990)).encode()
            headers = github_headers(GITHUB_SECRET, body, "pull_request")
            merged = requests.post(
                server.url + "/api/staging/webhooks/github", data=body, headers=headers, timeout=30
            )
        assert merged.status_code == 200 and merged.json()["applied"] is True, merged.text
        assert not row(backend).claimed
        os.kill(process.pid, signal.SIGCONT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
            process.communicate(timeout=30)
    assert process.returncode == 3, out + err
    errors = [line for line in err.splitlines() if line.strip()]
    assert len(errors) == 1, err
    assert f"branch {branch} was merged and the slot released" in errors[0], err
    assert "nothing was switched" in errors[0] and "Traceback" not in err
    # Not claimed again, nothing of the new commit serves, no claim after the merge's release.
    assert not row(backend).claimed, row(backend)
    assert current_commit(box) == before and wait_served(box, SLOT) == before
    events = backend.registry.history(SLOT, limit=10)
    merge = next(i for i, e in enumerate(events) if e.action == "release" and e.via == "github")
    assert not [e for e in events[:merge] if e.action == "claim"], events[:merge]
    reclaim(backend)
