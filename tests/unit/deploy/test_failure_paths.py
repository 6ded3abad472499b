"""Deploy's and rollback's failure paths, table by table, on the recording fake droplet
(fake_remote.py) instead of a host: a failure at each step -> which steps ran (and how each
ended), which releases are marked bad, what `current` points to afterwards (what serves),
the message, and what the slot's history is told. The sandbox tests (tests/test_deploy*.py)
prove the same paths end to end on real processes; these run in about a second."""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, replace
from typing import Any

import pytest

import staging_ops.remote as remote_pkg
from staging_ops import output
from staging_ops.deploy import (
    candidate,
    handover,
    heartbeat,
    lock,
    recipes,
    reconnect,
    reload,
    verify,
)
from staging_ops.deploy.session import Interrupted, Stop
from staging_ops.errors import Conflict, StagingError
from staging_ops.inventory import load_inventory
from staging_ops.slots.model import ClaimResult, SlotState
from tests.conftest import DEFAULT_INVENTORY
from tests.unit.deploy.fake_remote import FakeDroplet, FakeRemote, FakeResponse

OLD, A = "20250101T000000000Z-aaaaaaa", "a" * 40
B = "b" * 40
BRANCH = "alice/ja-1-search"
DEPLOY = (
    "claim",
    "connect",
    "lock",
    "fetch",
    "hold claim",
    "export + venv",
    "migrate",
    "memory check",
    "candidate start",
    "candidate verify",
    "check live",
    "switch",
    "hand-over",
    "main verify",
    "candidate stop + scheduler restart",
    "record",
)
ROLLBACK = ("claim", "connect", "lock", "choose release", *DEPLOY[DEPLOY.index("memory check") :])
UI = "job-search-ui@staging-1.service"
UI_CANDIDATE = "job-search-ui-candidate@staging-1.service"
SCHEDULER = "job-search-airflow-scheduler@staging-1.service"
DIES = "is failed: it does not stay up"
NOTHING_SWITCHED = "nothing was switched, the previous release keeps serving"
PUBLIC = "listens on 0.0.0.0:8001, beyond loopback: only nginx may face the network"
WORKER_MEND = (
    "a worker serves no one: turn its server off (Airflow's log server: `--skip-serve-logs`) "
    "or bind it to 127.0.0.1"
)


class FakeRegistry:
    """The slot held by JA-1 (alice); records what a run tells it."""

    def __init__(self, slot: Any):
        self.state = SlotState(
            slot.id, slot.identifier, slot.subdomain, "qa", "claimed", task="JA-1", owner="alice"
        )
        self.claim_error: Exception | None = None
        self.taken_at_fence = False
        self.reads = 0
        self.failed: list[tuple[str, str]] = []
        self.deploys: list[str] = []

    def get(self, slot_id: int) -> SlotState:
        self.reads += 1
        if self.taken_at_fence and self.reads > 2:  # the claim check, hold claim, the fence
            return replace(self.state, task="JA-9", owner="bob")
        return self.state

    def claim(self, slot_id: int, task: str, owner: str, ttl: Any, note: Any = None):
        if self.claim_error:
            raise self.claim_error
        return ClaimResult(self.state, renewed=True)

    def record_deploy(self, slot_id: int, branch: str, commit: str, by: str, **kw: Any):
        self.deploys.append(commit)
        return self.state

    def record_failed_deploy(self, slot_id, branch, commit, by, step, serving) -> None:
        self.failed.append((step, serving))

    def history(self, slot_id: int | None = None, limit: int = 50) -> list:
        return []


@dataclass
class Rig:
    droplet: FakeDroplet
    registry: FakeRegistry
    inventory: Any
    slot: Any
    log: output.StepLog

    @property
    def new(self) -> str:
        """The release the deploy exported (named after the time it ran)."""
        return next((n for n, r in self.droplet.releases.items() if r.commit == B), "NEW")

    def steps(self) -> list[tuple[str, str]]:
        return [(s.step, s.outcome) for s in self.log.steps]

    def deploy(self) -> Exception:
        with pytest.raises(StagingError) as failure:
            recipes.deploy(
                self.inventory,
                self.slot,
                BRANCH,
                registry=self.registry,
                operator="alice",
                log=self.log,
            )
        return failure.value

    def rollback(self, to: str | None = None) -> Exception:
        with pytest.raises(StagingError) as failure:
            recipes.rollback(
                self.inventory,
                self.slot,
                registry=self.registry,
                operator="alice",
                task="JA-1",
                to=to,
                log=self.log,
            )
        return failure.value


class VirtualTime:
    """`time` as the deploy's modules see it here: a sleep advances a clock of their own at
    once (a wait for a unit that never answers is the same wait, taken in no time)."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


WAITING_MODULES = (candidate, handover, heartbeat, lock, reconnect, reload, verify)


@pytest.fixture
def rig(monkeypatch) -> Rig:
    clock = VirtualTime()
    for module in WAITING_MODULES:
        monkeypatch.setattr(module, "time", clock)
    inventory = load_inventory(DEFAULT_INVENTORY)
    # No wait for the scheduler to settle: the fake's units are up or dead at once.
    inventory = replace(inventory, app=replace(inventory.app, worker_uptime=0))
    slot = inventory.slots[1]
    droplet = FakeDroplet(inventory.app, slot, inventory.host_of(slot))
    droplet.add_release(OLD, A)
    droplet.serve(OLD)
    droplet.branches[BRANCH] = B
    monkeypatch.setattr(remote_pkg, "connect", lambda host: FakeRemote(droplet))

    def via_nginx(host: Any, slot: Any, path: str, timeout: float = 5, session: Any = None):
        return FakeResponse(*droplet.via_nginx(path))

    monkeypatch.setattr(verify, "slot_get", via_nginx)
    monkeypatch.setattr(handover, "slot_get", via_nginx)
    return Rig(droplet, FakeRegistry(slot), inventory, slot, output.StepLog(quiet=True))


def ran_until(steps: tuple[str, ...], failed: str, *after: str) -> list[tuple[str, str]]:
    """`steps` up to `failed` (ok), `failed` failed, then `after` (ok)."""
    done = [(s, "ok") for s in steps[: steps.index(failed)]]
    return [*done, (failed, "failed"), *((s, "ok") for s in after)]


# --- deploy: a failure before the switch leaves the old release serving


def _branch_gone(rig: Rig) -> None:
    rig.droplet.branches.clear()


def _claim_taken(rig: Rig) -> None:
    rig.registry.claim_error = Conflict("staging-1 is held by task JA-9")


def _export_fails(rig: Rig) -> None:
    rig.droplet.fail("deploy-release.sh", (1, "", "No space left on device"))


def _migrate_fails(rig: Rig) -> None:
    rig.droplet.fail("deploy-migrate.sh", (1, "", "relation already exists"))


def _no_memory(rig: Rig) -> None:
    rig.droplet.available_kb = 256 * 1024


def _candidate_start_fails(rig: Rig) -> None:
    rig.droplet.fail("deploy-candidate.sh", (1, "unit not found", ""), verb="start")


def _candidate_dies(rig: Rig) -> None:
    rig.droplet.sick.add((B, "web-candidate"))


def _candidate_binds_every_address(rig: Rig) -> None:
    rig.droplet.public.add((B, "web"))


def _candidate_port_held_by_another(rig: Rig) -> None:
    rig.droplet.squatted.add((B, "web"))


@pytest.mark.parametrize(
    ("fault", "failed", "bad", "why", "recorded"),
    [
        (_branch_gone, "fetch", False, "branch not found: 'alice/ja-1-search'", False),
        (_claim_taken, "hold claim", False, "staging-1 is held by task JA-9", False),
        (_export_fails, "export + venv", False, "No space left on device", True),
        (_migrate_fails, "migrate", True, "relation already exists", True),
        (_no_memory, "memory check", False, "not enough memory for the hand-over", True),
        (_candidate_start_fails, "candidate start", True, "unit not found", True),
        (_candidate_dies, "candidate verify", True, f"{UI_CANDIDATE} {DIES}", True),
        (
            _candidate_binds_every_address,
            "candidate verify",
            True,
            f"web (candidate) {PUBLIC}",
            True,
        ),
        (
            _candidate_port_held_by_another,
            "candidate verify",
            True,
            "web (candidate) does not listen on 127.0.0.1:6001, its port: another process answers",
            True,
        ),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_a_deploy_that_fails_before_the_switch_leaves_the_old_release(
    rig, fault, failed, bad, why, recorded
):
    fault(rig)
    failure = rig.deploy()
    droplet = rig.droplet
    assert rig.steps() == ran_until(DEPLOY, failed)
    assert droplet.bad == ({rig.new} if bad else set())
    assert droplet.current == OLD
    assert droplet.running[UI] == OLD
    assert droplet.candidate is None
    first, *rest = str(failure).splitlines()
    assert first.startswith(f"staging-1: {failed} failed: {why}")
    assert f"; {NOTHING_SWITCHED}" in first
    # A release that failed on its candidate shows the candidate's log.
    assert (rest[:1] == [f"--- last lines of {UI_CANDIDATE} ---"]) == failed.startswith("candidate")
    # Only a run that changed something (the claim held) is a failed deploy in the history.
    assert rig.registry.failed == ([(failed, OLD)] if recorded else [])
    assert not droplet.ran("slot-current.sh", "set")


def test_a_failed_export_discards_its_partial_directory(rig):
    _export_fails(rig)
    rig.deploy()
    (discard,) = rig.droplet.ran("slot-current.sh", "discard")
    assert discard.args[1].endswith(".partial")


# --- deploy: from the switch on, a failure goes back to the verified release


def _switch_fails(rig: Rig) -> None:
    rig.droplet.fail("slot-current.sh", (1, "", "Read-only file system"), verb="set")


def _hand_over_fails(rig: Rig) -> None:
    rig.droplet.fail("deploy-restart.sh", (1, "", "Job failed"), verb="restart")


def _main_dies(rig: Rig) -> None:
    rig.droplet.sick.add((B, "web"))


def _scheduler_dies(rig: Rig) -> None:
    rig.droplet.sick.add((B, "scheduler"))


def _scheduler_binds_every_address(rig: Rig) -> None:
    rig.droplet.public.add((B, "scheduler"))


@pytest.mark.parametrize(
    ("fault", "failed", "why", "unit"),
    [
        (_hand_over_fails, "hand-over", "Job failed", UI),
        (_main_dies, "main verify", f"{UI} {DIES}", UI),
        (_scheduler_dies, "candidate stop + scheduler restart", f"{SCHEDULER} {DIES}", SCHEDULER),
        (
            _scheduler_binds_every_address,
            "candidate stop + scheduler restart",
            f"scheduler (current) {PUBLIC}; {WORKER_MEND}",
            SCHEDULER,
        ),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_a_deploy_that_fails_after_the_switch_rolls_back(rig, fault, failed, why, unit):
    fault(rig)
    failure = rig.deploy()
    droplet = rig.droplet
    assert rig.steps() == ran_until(DEPLOY, failed, "rollback")
    assert droplet.bad == {rig.new}
    assert droplet.current == OLD
    assert {droplet.running[u] for u in (UI, SCHEDULER)} == {OLD}
    assert droplet.candidate is None
    assert str(failure) == (
        f"staging-1: {failed} failed: {why}; rolled back to {OLD}; {rig.new} marked bad\n"
        f"--- last lines of {unit} ---\nthe last lines of {unit}"
    )
    assert rig.log.steps[-1].detail == f"{OLD} serves again (verified hand-over)"
    assert rig.registry.failed == [(failed, OLD)]


def test_a_switch_that_fails_changes_nothing_and_rolls_nothing_back(rig):
    _switch_fails(rig)
    failure = rig.deploy()
    droplet = rig.droplet
    assert rig.steps() == ran_until(DEPLOY, "switch")
    assert str(failure) == "staging: command failed (exit 1): Read-only file system"
    assert droplet.current == OLD
    assert droplet.bad == set()
    # Its verified candidate is left for the next deploy's `candidate start` to stop.
    assert droplet.candidate == rig.new
    assert rig.registry.failed == [("switch", OLD)]


def test_a_claim_released_before_the_switch_stops_the_deploy_there(rig):
    rig.registry.taken_at_fence = True
    failure = rig.deploy()
    assert isinstance(failure, Conflict)
    assert rig.steps() == ran_until(DEPLOY, "switch")
    assert str(failure).startswith("staging-1: JA-1's claim was released during this run")
    assert rig.droplet.current == OLD
    assert not rig.droplet.ran("slot-current.sh", "set")


def test_a_release_that_cannot_be_marked_verified_serves_and_says_so(rig):
    rig.droplet.fail("deploy-releases.sh", (3, "", "cannot write .ok"), verb="record")
    failure = rig.deploy()
    assert rig.steps() == ran_until(DEPLOY, "record")
    assert str(failure) == (
        f"staging-1: {rig.new} serves, verified, but could not be marked so on the droplet "
        "(cannot write .ok): it will read as never verified"
    )
    assert rig.droplet.current == rig.new
    assert rig.droplet.bad == set()
    assert rig.registry.deploys == [B]  # the registry is told what serves
    assert rig.registry.failed == [("record", rig.new)]


# --- the way back: the same steps as a deploy's go-live, else in place, else nothing


def _calls(rig: Rig, start: int, stop: int | None = None) -> list[tuple[str, str]]:
    return [(c.script, c.verb) for c in rig.droplet.calls[start:stop]]


def test_the_way_back_runs_the_go_live_steps_of_a_deploy(rig):
    _main_dies(rig)
    rig.deploy()
    calls = _calls(rig, 0)
    start = calls.index(("deploy-candidate.sh", "start"))
    back = len(calls) - 1 - calls[::-1].index(("deploy-candidate.sh", "start"))
    deploy_go_live = [c for c in calls[start:back] if c[0] != "deploy-releases.sh"]
    # The deploy's candidate start .. main verify (where it failed), then the way back's own.
    failed_at = deploy_go_live.index(("deploy-verify-units.sh", UI)) + 1
    way_back = calls[back:]
    assert way_back[:failed_at] == deploy_go_live[:failed_at]
    assert way_back[failed_at:] == [
        ("deploy-restart.sh", "stop"),  # the candidate units, drained
        ("deploy-candidate.sh", "stop"),
        ("deploy-verify-units.sh", SCHEDULER),
        ("slot-instances.sh", "listening"),  # on loopback only
        ("slot-current.sh", "read"),  # what serves, for the history
    ]
    # Behind the lock's fence, as the deploy's own.
    assert all(c.guarded for c in rig.droplet.ran("slot-current.sh", "set"))


def test_the_way_back_restarts_in_place_when_its_candidate_fails(rig):
    _main_dies(rig)
    rig.droplet.sick.add((A, "web-candidate"))
    failure = rig.deploy()
    assert rig.droplet.current == OLD
    assert rig.droplet.running[UI] == OLD
    assert f"rolled back to {OLD}; " in str(failure)
    detail = rig.log.steps[-1].detail
    assert detail == (
        f"{OLD} serves again (restarted in place: its candidate failed: {UI_CANDIDATE} is "
        "failed: it does not stay up)"
    )
    assert rig.droplet.bad == {rig.new}  # what served before is not judged by its candidate


def test_with_no_verified_release_to_go_back_to_the_slot_stops(rig):
    rig.droplet.releases[OLD].ok = False
    _main_dies(rig)
    failure = rig.deploy()
    steps = ran_until(DEPLOY, "main verify", "rollback")
    steps[DEPLOY.index("check live")] = ("check live", "warn")  # what serves was never verified
    assert rig.steps() == steps
    assert rig.log.steps[-1].detail == "no verified-good release: slot stopped"
    assert rig.droplet.current is None
    assert not any(rig.droplet.alive(u) for u in rig.droplet.roles)
    assert str(failure).startswith(
        f"staging-1: main verify failed: {UI} is failed: it does not stay up; rolled back to "
        f"nothing (slot stopped); {rig.new} marked bad"
    )
    assert rig.registry.failed == [("main verify", "nothing")]


def test_ctrl_c_after_the_switch_goes_back_and_leaves_the_release_unverified(rig):
    rig.droplet.fail("deploy-restart.sh", Stop(signal.SIGINT), verb="restart")
    failure = rig.deploy()
    assert isinstance(failure, Interrupted)
    assert failure.exit_code == 130
    assert rig.steps() == ran_until(DEPLOY, "hand-over", "rollback")
    assert str(failure) == (
        f"staging-1: interrupted during hand-over; rolled back to {OLD}; {rig.new} left unverified"
    )
    assert rig.droplet.current == OLD
    assert rig.droplet.bad == set()


# --- invoke rollback


NEWER, C = "20250201T000000000Z-ccccccc", "c" * 40


@pytest.fixture
def live_newer(rig) -> Rig:
    """The slot serves NEWER (verified); OLD is the one before it."""
    rig.droplet.add_release(NEWER, C)
    rig.droplet.serve(NEWER)
    return rig


def test_a_rollback_with_nothing_to_go_back_to_changes_nothing(rig):
    failure = rig.rollback()
    assert rig.steps() == ran_until(ROLLBACK, "choose release")
    assert str(failure) == "staging-1: no earlier verified-good release to roll back to"
    assert rig.droplet.current == OLD
    assert rig.registry.failed == []


@pytest.mark.parametrize(("to", "bad"), [(None, {OLD}), (OLD, set())])
def test_a_rollback_whose_candidate_fails_leaves_what_serves(live_newer, to, bad):
    rig = live_newer
    rig.droplet.sick.add((A, "web-candidate"))
    failure = rig.rollback(to=to)
    assert rig.steps() == ran_until(ROLLBACK, "candidate verify")
    assert str(failure).startswith(
        f"staging-1: candidate verify failed: {UI_CANDIDATE} is failed: it does not stay up; "
        f"{NOTHING_SWITCHED}"
    )
    assert rig.droplet.current == NEWER
    # `--to` picks a release, it does not judge it.
    assert rig.droplet.bad == bad
    assert rig.registry.failed == [("candidate verify", NEWER)]


def test_a_rollback_that_fails_after_its_switch_goes_back_to_what_served(live_newer):
    rig = live_newer
    rig.droplet.sick.add((A, "web"))
    failure = rig.rollback()
    assert rig.steps() == ran_until(ROLLBACK, "main verify", "rollback")
    assert str(failure).splitlines()[0] == (
        f"staging-1: main verify failed: {UI} is failed: it does not stay up; rolled back to "
        f"{NEWER}; {OLD} marked bad"
    )
    assert rig.droplet.current == NEWER
    assert rig.droplet.running[UI] == NEWER
    assert rig.droplet.bad == {OLD}


def test_a_deploy_that_fails_nowhere_serves_the_new_release_and_prints_its_steps_as_json(rig):
    result = recipes.deploy(
        rig.inventory, rig.slot, BRANCH, registry=rig.registry, operator="alice", log=rig.log
    )
    assert rig.steps() == [(s, "ok") for s in DEPLOY]
    assert rig.droplet.current == rig.new and rig.droplet.releases[rig.new].ok
    assert rig.droplet.candidate is None
    data = json.loads(output.to_json(result.as_dict()))
    assert list(data) == [
        "slot", "identifier", "branch", "commit", "release", "url", "venv", "warnings", "steps"
    ]  # fmt: skip
    assert data["steps"][0] == {
        "step": "claim",
        "outcome": "ok",
        "detail": "held by JA-1",
        "seconds": data["steps"][0]["seconds"],
    }
    assert [s["step"] for s in data["steps"]] == list(DEPLOY)


# --- a connection lost after the switch


@pytest.fixture
def no_pauses(monkeypatch):
    monkeypatch.setattr(reconnect, "PAUSES", (0.0, 0.0, 0.0))


def _lose_connection_in_main_verify(rig: Rig) -> None:
    lost = remote_pkg.Unreachable("staging: connection lost: EOF")
    rig.droplet.fail("deploy-verify-units.sh", lost, verb=UI)


def test_a_connection_lost_after_the_switch_is_regained_and_goes_back(rig, no_pauses):
    _lose_connection_in_main_verify(rig)
    failure = rig.deploy()
    assert rig.steps() == ran_until(DEPLOY, "main verify", "reconnect", "rollback")
    assert str(failure) == (
        f"staging-1: connection lost during main verify, regained; rolled back to {OLD}; "
        f"{rig.new} left unverified"
    )
    assert rig.droplet.current == OLD
    assert rig.droplet.bad == set()
    assert rig.registry.failed == [("main verify", OLD)]


def test_a_connection_not_regained_says_what_serves_and_how_to_restore(rig, no_pauses, monkeypatch):
    _lose_connection_in_main_verify(rig)
    reached = iter([FakeRemote(rig.droplet)])

    def connect(host: Any) -> FakeRemote:
        answer = next(reached, None)
        if answer is None:
            raise remote_pkg.Unreachable("staging: no route to host")
        return answer

    monkeypatch.setattr(remote_pkg, "connect", connect)
    failure = rig.deploy()
    assert rig.steps()[-1] == ("reconnect", "failed")
    assert str(failure) == (
        "staging-1: connection to staging lost during main verify, not regained after 3 "
        f"tries: `current` points to {rig.new}, not verified; restore the last verified one: "
        f"invoke rollback --slot 1 --to {OLD} --task JA-1"
    )
    assert rig.droplet.current == rig.new
    # The droplet did not answer: the history says so rather than guessing.
    assert rig.registry.failed == [("reconnect", "unknown (the droplet did not answer)")]
