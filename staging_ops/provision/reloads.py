"""Which deployed slots must take this run's files into their running processes, why, and how
(pure). A slot's processes read their unit, the runner, the process table and the slot's env
files only when they start, so a change to any of those reaches a deployed slot only through a
restart; provision-all does not restart them in place (every request to `/` and `/airflow/`
would answer 502 until they are up again) but *reloads* the slot after the services step:

    hand-over         the live release is verified: the deploy's candidate hand-over with the
                      same release (candidate started with the new files and verified, the main
                      instances restarted behind it, verified, the workers last): nothing drops
    restart in place  the live release was never verified (no `.ok`: there is nothing proven
                      to hand over to): its units restart as they are, and the run says for how
                      long the slot was down

The slots left to reload are kept in the pending-handlers marker until each is done, so a run
killed (or a hand-over that failed) leaves them to the next run.
"""

from __future__ import annotations

from dataclasses import dataclass

from staging_ops.inventory import Slot
from staging_ops.provision.desired import Desired
from staging_ops.provision.facts import live_spec, verified_link
from staging_ops.remote.facts import HostFacts
from staging_ops.render import RUNNER_DIR, TYPE_SERVICES, WORKER_SERVICE, unit_template

HANDOVER = "hand over"
IN_PLACE = "restart in place"
PENDING = "left pending by an earlier run"
# File actions that change what a process reads (a mode or owner fix changes nothing it sees).
_CONTENT = ("create", "update")


@dataclass(frozen=True)
class Reload:
    """One deployed slot to reload: how (HANDOVER or IN_PLACE) and why (what changed)."""

    slot: Slot
    how: str
    reasons: tuple[str, ...]

    @property
    def in_place(self) -> bool:
        return self.how == IN_PLACE

    @property
    def why(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class FileChange:
    """A rendered file this run writes: its path, kind (unit, env, ...) and action."""

    path: str
    kind: str
    action: str


def slot_reasons(
    want: Desired, changed: list[FileChange], slot: Slot, facts: HostFacts
) -> list[str]:
    """What changed that `slot`'s processes read (none: nothing to reload)."""
    host = want.host
    runner = f"{host.base_dir}/{RUNNER_DIR}"
    shared = f"{slot.directory(host)}/shared/"
    spec = live_spec(want, facts, slot)
    templates = {
        unit_template(want.app, TYPE_SERVICES.get(ptype, WORKER_SERVICE)) for ptype in spec.types
    }
    reasons: list[str] = []
    for change in changed:
        if change.action not in _CONTENT:
            continue
        name = change.path.rsplit("/", 1)[-1]
        if change.kind == "env" and change.path.startswith(shared):
            reasons.append(f"env {name}")
        elif change.kind == "unit" and name in templates:
            reasons.append(f"unit {name}")
        elif change.path == f"{runner}/run-process":
            reasons.append("runner bin/run-process")
        elif change.path == f"{runner}/app.processes" and spec.source == "inventory":
            # A release with a Procfile runs its own table, not the inventory's commands.
            reasons.append("commands bin/app.processes")
    return reasons


def reloads(
    want: Desired,
    changed: list[FileChange],
    deployed: list[Slot],
    facts: HostFacts,
    pending: tuple[str, ...],
) -> list[Reload]:
    """The deployed slots whose processes must take a changed file, or that an earlier run
    left pending (`pending`: slot identifiers), each with how and why, in slot order."""
    found = []
    for slot in deployed:
        reasons = slot_reasons(want, changed, slot, facts)
        if not reasons and slot.identifier in pending:
            reasons = [PENDING]
        if not reasons:
            continue
        verified = not facts.state(verified_link(want, slot)).missing
        found.append(Reload(slot, HANDOVER if verified else IN_PLACE, tuple(reasons)))
    return found


def carried(want: Desired, pending: tuple[str, ...], changed: list[FileChange]) -> tuple[str, ...]:
    """Slots this run does not converge (`--slots`) that are still to reload: pending ones,
    and, when a file every slot's processes read changed (a unit template, the runner, the
    process table), all of them: kept in the marker for the run that converges them."""
    ours = {s.identifier for s in want.slots}
    left = [p for p in pending if p not in ours]
    if any(_shared(want, c) for c in changed):
        left += [s for s in want.others if s not in left]
    return tuple(left)


def _shared(want: Desired, change: FileChange) -> bool:
    """A file of the host's that a deployed slot's processes may read (not its own env)."""
    runner = f"{want.host.base_dir}/{RUNNER_DIR}/"
    templates = {unit_template(want.app, s) for s in (*TYPE_SERVICES.values(), WORKER_SERVICE)}
    name = change.path.rsplit("/", 1)[-1]
    # Updated, not created: a host without the file yet runs no deployed slot on it.
    return change.action == "update" and (
        change.path.startswith(runner) or (change.kind == "unit" and name in templates)
    )
