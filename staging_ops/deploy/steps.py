"""What a deploy is made of: steps, each named as the operator sees it printed, run in order
on one Deployer (session.py), with what the run has learned so far (Run) and what it reports
(DeployResult). Each step is a module of this package; recipes.py lists them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from staging_ops import crash_points, output
from staging_ops.jsondoc import JSONObject

if TYPE_CHECKING:
    from staging_ops.deploy.claim import ClaimCheck
    from staging_ops.deploy.session import Deployer
    from staging_ops.slots.model import SlotRegistry


@dataclass
class DeployResult:
    """What a deploy or rollback reports (--json prints it)."""

    slot: int
    identifier: str
    branch: str
    commit: str = ""
    release: str = ""
    url: str = ""
    venv: str = ""
    warnings: list[str] = field(default_factory=list)
    steps: list[output.StepRecord] = field(default_factory=list)

    def as_dict(self) -> JSONObject:
        return {**self.__dict__, "steps": [s.as_json() for s in self.steps]}


@dataclass
class Run:
    """One deploy or rollback as its steps see it: the result so far, the release that served
    before (`previous`), the claim checked first and the registry to record in."""

    result: DeployResult
    claim: ClaimCheck
    registry: SlotRegistry
    previous: str | None = None
    to: str | None = None  # rollback --to
    # A deploy of this commit of the branch (a push's), not of the branch's head.
    pin: str | None = None


@dataclass(frozen=True)
class Step:
    """A step as printed: `run` does it and returns the line's detail (or None). What only a
    deploy's own line does is apart from `run`, so that the way back (rollback.py) can run
    the same `run`s: `guard` checks first, inside the line (the claim's fence before the
    switch); a test may kill the process at `crash_point` just after the step, or while its
    remote command runs at `crash_during` (crash_points.py). `changes`: the first step of
    its run that changes anything (a failure after it goes into the slot's history)."""

    name: str
    run: Callable[[Deployer, Run], str | None]
    crash_point: str | None = None
    guard: Callable[[Deployer, Run], None] | None = None
    crash_during: str | None = None
    changes: bool = False


def run_steps(steps: Iterable[Step], deployer: Deployer, run: Run) -> None:
    """Each step in order, one printed line each; the first failure propagates."""
    for step in steps:
        with deployer.step(step.name) as rec:
            if step.guard:
                step.guard(deployer, run)
            if step.crash_during:
                crash_points.crash_soon(step.crash_during)
            detail = step.run(deployer, run)
            if detail:
                rec.detail = detail
        deployer.changed = deployer.changed or step.changes
        if step.crash_point:
            crash_points.crash_point(step.crash_point)


def run_quietly(steps: Iterable[Step], deployer: Deployer, run: Run) -> None:
    """The steps' own work in order, without their lines, guards or crash points: the way
    back after a failed go-live runs inside its one `rollback` line."""
    for step in steps:
        step.run(deployer, run)


def tail(text: str, lines: int = 3) -> str:
    """The last lines of a remote command's output, on one line: a failure's message."""
    return " | ".join(text.strip().splitlines()[-lines:]) or "no output"
