"""A deploy's or rollback's start, success and failure as integration events (GitHub's
Deployment statuses, the Linear task): one hook line at each place the run records itself
(`hold claim` and `choose release`, `record`, failure.py), never failing or delaying it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from staging_ops import integrations
from staging_ops.integrations.events import FAILED, STARTED, SUCCEEDED, Event
from staging_ops.integrations.slots import slot_facts

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer
    from staging_ops.deploy.steps import Run

ROLLBACK_STEP = "choose release"  # only a rollback has it (rollback.CHOOSE_STEP)


def event(deployer: Deployer, run: Run, kind: str, **extra: str | None) -> Event | None:
    """The run's Event of `kind`; None before its commit is known (nothing to deploy)."""
    result = run.result
    if not result.commit:
        return None
    slot = deployer.slot
    facts = slot_facts(deployer.inventory, slot.id, slot.identifier, slot.subdomain)
    return Event(
        kind=kind,
        slot_id=slot.id,
        environment=slot.identifier,
        url=facts.url,
        commit=result.commit,
        branch=result.branch,
        task=run.claim.task,
        repository=facts.repository,
        log_url=facts.log_url,
        by=deployer.operator,
        rollback=any(s.step == ROLLBACK_STEP for s in deployer.log.steps),
        **extra,
    )


def started(deployer: Deployer, run: Run) -> None:
    integrations.emit(run.registry, event(deployer, run, STARTED))


def succeeded(deployer: Deployer, run: Run) -> None:
    integrations.emit(run.registry, event(deployer, run, SUCCEEDED))


def failed(deployer: Deployer, run: Run, step: str | None, serving: str) -> None:
    integrations.emit(run.registry, event(deployer, run, FAILED, step=step, serving=serving))
