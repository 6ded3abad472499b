"""The droplet's side of drift: what every slot's `current` link points to, that release's
commit and whether it was verified, read by remote script status-live.sh in ONE command per
host, hosts in parallel, each bounded (status must not hang on a dead host: a host not
reached is a reason per slot, never an exception).

A shell script rather than the facts probe: status runs it on every call, and starting
python3 on the droplet costs more than the whole script. The same command then reads what
each slot's processes use (slot-memory.sh, memory.py): status's `memory_mb`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from invoke.exceptions import Failure

from staging_ops.drift import LiveRelease
from staging_ops.errors import StagingError
from staging_ops.inventory import Host, Inventory, Slot
from staging_ops.remote.connection import connect
from staging_ops.remote.memory import memory_command, parse_memory
from staging_ops.remote.scripts import script_command
from staging_ops.slot_layout import SlotPaths

# The health checks' own timeout is 3 s: status waits for the slower of the two, no longer.
TIMEOUT = 3.0


@dataclass(frozen=True)
class LiveReleases:
    """Per slot id: the release `current` points to, or why it was not read."""

    releases: dict[int, LiveRelease] = field(default_factory=dict)
    unread: dict[int, str] = field(default_factory=dict)
    # The PSS of each slot's processes in MB (0: none runs); a slot whose figure could not be
    # read is missing.
    memory_mb: dict[int, int] = field(default_factory=dict)

    def as_json(self, slot_id: int) -> dict[str, Any]:
        """The slot's entry as status --json and the dashboard carry it."""
        found = self.releases.get(slot_id)
        if found is not None:
            return found.as_json()
        return {"error": self.unread.get(slot_id, "not read")}


def parse_live(out: str, count: int) -> list[LiveRelease]:
    """status-live.sh's answer for `count` links, in their order: "-" is no link, else
    "target<TAB>commit<TAB>branch<TAB>verified" (the .release-env's quotes still on)."""
    lines = out.splitlines()
    if len(lines) != count:
        raise StagingError(f"status-live.sh: {len(lines)} lines for {count} slots")
    found = []
    for line in lines:
        if line == "-":
            found.append(LiveRelease())
            continue
        target, commit, branch, verified = [*line.split("\t"), "", "", ""][:4]
        found.append(
            LiveRelease(
                target.rstrip("/").rsplit("/", 1)[-1],
                commit.strip('"') or None,
                branch.strip('"') or None,
                verified == "1",
            )
        )
    return found


def _read_host(
    host: Host, slots: list[Slot], timeout: float
) -> tuple[dict[int, LiveRelease], dict[int, int]]:
    links = [SlotPaths(host, slot).current for slot in slots]
    dirs = [SlotPaths(host, slot).root for slot in slots]
    # One command: the links, then (whatever the memory reading makes of it) the memory.
    command = f"{script_command('status-live.sh', *links)} && {{ {memory_command(dirs)} || :; }}"
    session = connect(replace(host, connect_timeout=min(host.connect_timeout, timeout)))
    try:
        _, out, _ = session.run(command, timeout=timeout)
    finally:
        session.close()
    lines = out.splitlines()
    live = parse_live("\n".join(lines[: len(links)]), len(links))
    try:
        _, memory = parse_memory("\n".join(lines[len(links) :]), len(dirs))
        used = {slot.id: m.total_mb for slot, m in zip(slots, memory, strict=True)}
    except StagingError:
        used = {}  # status still says what runs; only the memory column is unknown
    return {slot.id: r for slot, r in zip(slots, live, strict=True)}, used


def read_live(inventory: Inventory, slots: list[Slot], timeout: float = TIMEOUT) -> LiveReleases:
    """Every slot's live release, one command per host, hosts in parallel."""
    by_host: dict[str, list[Slot]] = {}
    for slot in slots:
        by_host.setdefault(slot.host, []).append(slot)
    if not by_host:
        return LiveReleases()

    def run(name: str) -> tuple[dict[int, LiveRelease], dict[int, int]] | str:
        try:
            return _read_host(inventory.hosts[name], by_host[name], timeout)
        except (StagingError, OSError, Failure) as exc:
            return str(exc) or type(exc).__name__

    result = LiveReleases()
    with ThreadPoolExecutor(max_workers=min(16, len(by_host))) as pool:
        for name, answer in zip(by_host, pool.map(run, by_host), strict=True):
            if isinstance(answer, str):
                result.unread.update({slot.id: answer for slot in by_host[name]})
            else:
                result.releases.update(answer[0])
                result.memory_mb.update(answer[1])
    return result
