"""The `memory check` step (deploy and rollback, just before `candidate start`): will the
hand-over fit in the droplet's memory? During a hand-over the slot runs its release twice
over for its port types (the main instances and the candidate; the real Airflow 2 webserver's
candidate adds ~280 MB PSS), and a droplet that runs out of memory then has the kernel kill
whatever it picks. So the candidate starts only if the droplet's MemAvailable, less what the
candidate will need, leaves the host's `memory_reserve_mb` free; else the deploy stops here
with one line saying what it needs and what is free: no candidate started, nothing switched,
the previous release keeps serving.

What the candidate will need is measured: the PSS its port types' main instances use now (the
same processes of the same app, so the best guess of a second copy); a type the slot does not
run now (a first deploy, a type the release adds) counts the inventory's `candidate_memory_mb`.
A candidate a killed deploy left running is stopped by `candidate start` before it starts the
new one, so its memory counts as free. One remote command (slot-instances.sh, remote/memory.py);
the decision (`decide`) is pure.

The rollback after a failed go-live (rollback.py) does not ask: it is the way back to a
verified release, and refusing it would leave the failed one live."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from staging_ops.deploy.steps import Run, Step, tail
from staging_ops.errors import StagingError
from staging_ops.remote.memory import KB_PER_MB, SlotMemory, memory_command, parse_memory

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer


class MemoryRefused(StagingError):
    """The hand-over would not fit: nothing was started (exit 1)."""


@dataclass(frozen=True)
class Need:
    """What one port type's candidate is taken to need, and whether it was measured (the
    slot's main instance of that type, now) or is the inventory's estimate."""

    ptype: str
    mb: int
    measured: bool

    def describe(self) -> str:
        how = "measured" if self.measured else "estimated, candidate_memory_mb"
        return f"{self.ptype} {self.mb} MB {how}"


@dataclass(frozen=True)
class Admission:
    """The verdict: the candidate's needs per port type, the droplet's MemAvailable (plus what
    a leftover candidate frees when it is stopped first) and the reserve kept free, in MB."""

    needs: tuple[Need, ...]
    available_mb: int
    freed_mb: int
    reserve_mb: int

    @property
    def need_mb(self) -> int:
        return sum(n.mb for n in self.needs)

    @property
    def free_mb(self) -> int:
        return self.available_mb + self.freed_mb

    @property
    def fits(self) -> bool:
        """Nothing to start fits; else the reserve must be left once the candidate runs."""
        return not self.needs or self.free_mb - self.need_mb >= self.reserve_mb

    def _free_text(self) -> str:
        freed = f" (+{self.freed_mb} MB of a leftover candidate)" if self.freed_mb else ""
        return f"{self.available_mb} MB available{freed}"

    def detail(self) -> str:
        """The step line's detail when it fits."""
        if not self.needs:
            return "no candidate to start"
        parts = ", ".join(n.describe() for n in self.needs)
        return (
            f"candidate {self.need_mb} MB ({parts}), {self._free_text()}, "
            f"{self.reserve_mb} MB kept free"
        )

    def refusal(self) -> str:
        """The one line of a refusal: what the hand-over needs, what is free."""
        parts = " + ".join(n.describe() for n in self.needs)
        return (
            f"not enough memory for the hand-over: it needs {self.need_mb + self.reserve_mb} MB "
            f"(candidate {parts} + memory_reserve_mb {self.reserve_mb} MB kept free), "
            f"the droplet has {self._free_text()}; no candidate was started"
        )


def decide(
    available_kb: int,
    slot: SlotMemory,
    port_types: tuple[str, ...],
    estimate_mb: int,
    reserve_mb: int,
) -> Admission:
    """The admission of a candidate of `port_types` into a slot whose instances use `slot`
    now, on a droplet with `available_kb` MemAvailable. Needs round up and what is available
    rounds down: the check errs on the side of refusing by less than a megabyte."""
    needs = []
    for ptype in port_types:
        used = slot.of("current", ptype)
        if used:
            needs.append(Need(ptype, math.ceil(used / KB_PER_MB), True))
        else:
            needs.append(Need(ptype, estimate_mb, False))
    return Admission(
        tuple(needs),
        available_kb // KB_PER_MB,
        slot.candidates_kb() // KB_PER_MB,
        reserve_mb,
    )


READ_TRIES = 3


def check(deployer: Deployer) -> Admission:
    """Measure the slot and the droplet (one remote command) and decide for the release
    `deployer.spec` declares."""
    # A process that exits while awk reads its /proc files can make that read fail (mawk: "read
    # error (No such process)"): the next reading no longer meets it.
    for _ in range(READ_TRIES):
        code, out, err = deployer.run(memory_command(deployer.paths.root), check=False)
        if code == 0:
            break
    else:
        raise StagingError(f"reading the droplet's memory failed: {tail(err or out)}")
    reading = parse_memory(out, 1)
    available, (slot,) = reading.available_kb, reading.slots
    return decide(
        available,
        slot,
        deployer.spec.port_types,
        deployer.app.candidate_memory_mb,
        deployer.host.memory_reserve_mb,
    )


def _step(deployer: Deployer, run: Run) -> str:
    verdict = check(deployer)
    if not verdict.fits:
        raise MemoryRefused(verdict.refusal())
    return verdict.detail()


STEP = Step("memory check", _step)
