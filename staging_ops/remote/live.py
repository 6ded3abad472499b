"""The droplet's side of drift and of each process: what every slot's `current` link points to,
that release's commit and whether it was verified, the process spec it declares and the
systemd state of exactly the units it runs, read by remote script status-live.sh in ONE
command per host, hosts in parallel, each bounded (status must not hang on a dead host: a host
not reached is a reason per slot, never an exception).

A shell script rather than the facts probe: status runs it on every call, and starting
python3 on the droplet costs more than the whole script. The same command then reads what
each slot's processes use (slot-instances.sh, memory.py): status's `memory_mb`."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from invoke.exceptions import Failure

from staging_ops.drift import LiveRelease
from staging_ops.errors import StagingError
from staging_ops.inventory import App, Host, Inventory, Slot
from staging_ops.processes import ProcessSpec, spec_from_json
from staging_ops.processes.status import HealthAnswer, Processes, UnitState, judge_processes
from staging_ops.remote.connection import connect
from staging_ops.remote.errors import reason
from staging_ops.remote.listeners import SlotListening, listeners_command, parse_listeners
from staging_ops.remote.memory import memory_command, parse_memory
from staging_ops.remote.scripts import home, script_command
from staging_ops.render import RUNNER_DIR, TYPE_SERVICES, process_unit, worker_unit_prefix
from staging_ops.slot_layout import SlotPaths

# The health checks' own timeout is 3 s: status waits for the slower of the two, no longer.
TIMEOUT = 3.0


@dataclass(frozen=True)
class LiveProcesses:
    """A live release's processes as the droplet says: its `.process-spec.json` (None: it
    has none) and the systemd state of each unit the script asked about (by unit name)."""

    spec_text: str | None = None
    states: dict[str, UnitState] = field(default_factory=dict)

    def spec(self, app: App) -> ProcessSpec:
        """What the release declares (a release without a spec runs the inventory's three)."""
        return spec_from_json(self.spec_text, app)


@dataclass(frozen=True)
class LiveReleases:
    """Per slot id: the release `current` points to, or why it was not read; and, for a slot
    with a live release, its processes."""

    releases: dict[int, LiveRelease] = field(default_factory=dict)
    unread: dict[int, str] = field(default_factory=dict)
    processes: dict[int, LiveProcesses] = field(default_factory=dict)
    # The PSS of each slot's processes in MB (0: none runs); a slot whose figure could not be
    # read is missing.
    memory_mb: dict[int, int] = field(default_factory=dict)
    # What each slot's running instances listen on (read only when asked: verify); a slot
    # whose answer could not be read is missing.
    listening: dict[int, SlotListening] = field(default_factory=dict)


def slot_processes(
    app: App,
    slot: Slot,
    live: LiveReleases,
    *,
    ui_up: bool | None = None,
    airflow: HealthAnswer | None = None,
) -> Processes | None:
    """Each process the slot's live release declares, judged (processes.status): its unit
    as systemd says, and the probes through nginx where they were made. None for a slot
    without a live release or whose host was not read."""
    procs = live.processes.get(slot.id)
    if procs is None:
        return None
    spec = procs.spec(app)
    units = {ptype: process_unit(app, slot, ptype) for ptype in spec.types}
    return judge_processes(spec, units, procs.states, ui_up=ui_up, airflow=airflow)


@home("status-live.sh")
def live_command(table: str, link: str, units: str, *link_units: str) -> str:
    """What the runner's TABLE, each slot's `current` LINK and its UNITS (unit_map) run; more
    slots follow as LINK UNITS pairs (parse_live reads the answer)."""
    return script_command("status-live.sh", table, link, units, *link_units)


def unit_map(app: App, slot: Slot) -> str:
    """status-live.sh's UNITS argument for a slot: each type with a unit template of its own
    and its unit, then `*=` the worker units' prefix (render's names, so the script asks
    about exactly the units deploy starts)."""
    named = [f"{ptype}={process_unit(app, slot, ptype)}" for ptype in TYPE_SERVICES]
    return " ".join([*named, f"*={worker_unit_prefix(app, slot)}"])


def parse_live(out: str, count: int) -> tuple[list[LiveRelease], list[LiveProcesses | None]]:
    """status-live.sh's answer (one JSON line) for `count` links, in their order: each
    slot's live release (null: no link), its spec and units; then the units' states."""
    try:
        answer = json.loads(out.strip().splitlines()[0] if out.strip() else "")
        slots, shown = answer["slots"], answer["units"]
        if not isinstance(slots, list) or not isinstance(shown, list):
            raise TypeError(answer)
        found = [_live_release(entry) for entry in slots]
        units = [[str(unit) for _, unit in (entry or {}).get("units", [])] for entry in slots]
        specs = [(entry or {}).get("spec") or None for entry in slots]
        states_shown = [UnitState.from_props(props) for props in shown]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise StagingError(f"status-live.sh: unreadable answer {out[:200]!r}") from None
    if len(found) != count:
        raise StagingError(f"status-live.sh: {len(found)} answers for {count} slots")
    listed = [u for slot_units in units for u in slot_units]
    states = {u: st for u, st in zip(listed, states_shown, strict=False) if st is not None}
    processes: list[LiveProcesses | None] = [
        LiveProcesses(spec, {u: states[u] for u in slot_units if u in states})
        if live.release
        else None
        for live, spec, slot_units in zip(found, specs, units, strict=True)
    ]
    return found, processes


def _live_release(entry: object) -> LiveRelease:
    """One slot's entry of the answer: null (no link) or its release as the script read it."""
    if entry is None:
        return LiveRelease()
    if not isinstance(entry, dict):
        raise TypeError(entry)
    return LiveRelease(
        str(entry["target"]).rstrip("/").rsplit("/", 1)[-1],
        str(entry["commit"]) or None,
        str(entry["branch"]) or None,
        entry["verified"] == 1,
    )


# Between status-live.sh's answer and slot-instances.sh's, in the one command's output.
MEMORY_MARK = "--- memory"
LISTENING_MARK = "--- listening"


# One host's answer: per slot id, its live release and processes; its memory figure (MB);
# what its instances listen on (when asked).
HostReading = tuple[
    dict[int, tuple[LiveRelease, LiveProcesses | None]], dict[int, int], dict[int, SlotListening]
]


def _read_host(
    host: Host, app: App, slots: list[Slot], timeout: float, listening: bool = False
) -> HostReading:
    args = [f"{host.base_dir}/{RUNNER_DIR}/app.processes"]
    for slot in slots:
        args += [SlotPaths(host, slot).current, unit_map(app, slot)]
    dirs = [SlotPaths(host, slot).root for slot in slots]
    # One command: the links and units, then (whatever the memory reading makes of it) the
    # memory, and what the instances listen on where asked.
    command = (
        f"{live_command(*args)} && echo {MEMORY_MARK!r} && {{ {memory_command(*dirs)} || :; }}"
    )
    if listening:
        command += f" && echo {LISTENING_MARK!r} && {{ {listeners_command(*dirs)} || :; }}"
    # Status's bound wins over any ConnectTimeout the ssh config would fill in.
    bounded = replace(
        host,
        connect_timeout=min(host.connect_timeout, timeout),
        set_in_inventory=host.set_in_inventory | {"connect_timeout"},
    )
    session = connect(bounded)
    try:
        _, out, _ = session.run(command, timeout=timeout)
    finally:
        session.close()
    live_out, _, rest = out.partition(f"\n{MEMORY_MARK}\n")
    memory_out, _, listening_out = rest.partition(f"\n{LISTENING_MARK}\n")
    found, processes = parse_live(live_out, len(slots))
    try:
        memory = parse_memory(memory_out, len(dirs)).slots
        used = {slot.id: m.total_mb for slot, m in zip(slots, memory, strict=True)}
    except StagingError:
        used = {}  # status still says what runs; only the memory figure is unknown
    heard: dict[int, SlotListening] = {}
    if listening:
        try:
            answers = parse_listeners(listening_out, len(dirs))
            heard = {slot.id: a for slot, a in zip(slots, answers, strict=True)}
        except StagingError:
            pass  # what listens is unknown: verify says so for no slot rather than wrongly
    answer = {
        slot.id: (live, procs) for slot, live, procs in zip(slots, found, processes, strict=True)
    }
    return answer, used, heard


def read_live(
    inventory: Inventory, slots: list[Slot], timeout: float = TIMEOUT, listening: bool = False
) -> LiveReleases:
    """Every slot's live release and its processes' units (and, `listening`, what its
    instances listen on), one command per host, hosts in parallel."""
    by_host: dict[str, list[Slot]] = {}
    for slot in slots:
        by_host.setdefault(slot.host, []).append(slot)
    if not by_host:
        return LiveReleases()

    def run(name: str) -> HostReading | str:
        try:
            return _read_host(
                inventory.hosts[name], inventory.app, by_host[name], timeout, listening
            )
        except (StagingError, OSError, Failure) as exc:
            return reason(exc)

    result = LiveReleases()
    with ThreadPoolExecutor(max_workers=min(16, len(by_host))) as pool:
        for name, answer in zip(by_host, pool.map(run, by_host), strict=True):
            if isinstance(answer, str):
                result.unread.update({slot.id: answer for slot in by_host[name]})
            else:
                for slot_id, (live, procs) in answer[0].items():
                    result.releases[slot_id] = live
                    if procs is not None:
                        result.processes[slot_id] = procs
                result.memory_mb.update(answer[1])
                result.listening.update(answer[2])
    return result
