"""Remote script deploy-restart.sh in one place: its command (arguments named as its usage
header says), how a unit is given to be drained (UNIT=PORT), and the reader of its answer's
first line (each unit's NRestarts just before the restart, one JSON line). Pure: restart.py
and candidate.py run it."""

from __future__ import annotations

import json

from staging_ops.errors import StagingError
from staging_ops.remote.scripts import home, script_command

SCRIPT = "deploy-restart.sh"


@home(SCRIPT)
def command(outlog: str, verb: str, waited: int, *units: str) -> str:
    """`systemctl VERB` on every unit at once, detached; the first `waited` units waited for
    (their output to OUTLOG), UNIT=PORT drained."""
    return script_command(SCRIPT, outlog, verb, waited, *units)


def workers_done_path(outlog: str) -> str:
    """Where the script writes the droplet's clock once the unwaited units' restart is done
    (OUTLOG.more.done)."""
    return f"{outlog}.more.done"


def drained(units: list[str], ports: dict[str, int]) -> list[str]:
    """`units` as deploy-restart.sh takes them: UNIT=PORT for a unit that serves a port
    (drained, then its exit cut short), the others by name."""
    return [f"{unit}={ports[unit]}" if unit in ports else unit for unit in units]


def parse_restarts_before(units: list[str], line: str) -> dict[str, int]:
    """Each unit's NRestarts from the answer's first line (`{"restarts_before": [0, 3, 0]}`,
    in the units' order); a count systemd did not give is 0."""
    try:
        counts = json.loads(line)["restarts_before"]
        if not isinstance(counts, list) or not all(isinstance(c, int) for c in counts):
            raise ValueError(counts)
    except (ValueError, KeyError, TypeError):
        raise StagingError(f"{SCRIPT}: unreadable answer {line[:200]!r}") from None
    return {unit: count for unit, count in zip(units, counts, strict=False)}
