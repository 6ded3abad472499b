"""What the droplet has free and what each slot's processes use, read by remote script
slot-instances.sh (`memory`): the deploy's memory admission (deploy/admission.py) runs it for
its slot, status appends it to its one command per host (live.py).

Sizes are PSS (proportional set size: a page shared by n processes counts 1/n to each), summed
over each unit's process tree, so the figures of all slots add up to what they take from the
droplet; the droplet's side is the kernel's MemAvailable (what can be had without swapping)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from staging_ops.errors import StagingError
from staging_ops.remote.scripts import home, script_command

SCRIPT = "slot-instances.sh"
KB_PER_MB = 1024


@dataclass(frozen=True)
class SlotMemory:
    """One slot's running instances ("current-web", "candidate-airflow", ...: bin/run-process's
    names, `<where>-<type>`) with the PSS of each one's process tree, in kB."""

    instances: dict[str, int] = field(default_factory=dict)

    def of(self, where: str, ptype: str) -> int | None:
        """The PSS (kB) of `where`'s (current, candidate) `ptype` instance; None: not running."""
        return self.instances.get(f"{where}-{ptype}")

    def candidates_kb(self) -> int:
        """What the slot's candidate instances use (a killed deploy's, still running)."""
        return sum(v for k, v in self.instances.items() if k.startswith("candidate-"))

    @property
    def total_mb(self) -> int:
        """The whole slot, in MB rounded to the nearest (status's `memory_mb`)."""
        return round(sum(self.instances.values()) / KB_PER_MB)


@home(SCRIPT, "memory")
def memory_command(*slot_dirs: str) -> str:
    """The command that reads the droplet's MemAvailable and each of `slot_dirs`' instances."""
    return script_command(SCRIPT, "memory", *slot_dirs)


@dataclass(frozen=True)
class MemoryReading:
    """slot-instances.sh memory's answer: the droplet's MemAvailable (kB) and each slot's
    instances, in the order the slot directories were given."""

    available_kb: int
    slots: tuple[SlotMemory, ...]


def parse_memory(out: str, count: int) -> MemoryReading:
    """slot-instances.sh memory's JSON line for `count` slot directories; StagingError if it is not
    that."""
    try:
        found = json.loads(out)
        slots = tuple(
            SlotMemory({str(name): _kb(kb) for name, kb in slot.items()}) for slot in found["slots"]
        )
        reading = MemoryReading(_kb(found["available"]), slots)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise StagingError(f"{SCRIPT}: unreadable answer {out[:200]!r}") from None
    if len(reading.slots) != count:
        raise StagingError(f"{SCRIPT}: {len(reading.slots)} slots answered, {count} asked")
    return reading


def _kb(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"not a number of kB: {value!r}")
    return value
