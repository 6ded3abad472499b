"""A recording fake droplet for the deploy's and rollback's failure paths, in the spirit of
Fabric's MockRemote: it stands in for `remote.RemoteHost` (the seam every step's command goes
through: `Deployer.run` -> `RemoteHost.run`, the lock's session and the HTTP channels of
`verify.ssh_get` on its transport), records every remote script it is asked to run with its
arguments, and answers each as the droplet would, from a small model of one slot: its
releases (`.ok`, `.bad`), where `current` and `candidate` point, which release each unit
runs. A test scripts a failure by script (and verb) with `fail`, or makes a release's unit
sick with `sick` (it dies at start: its port refuses, systemd says failed).

Nothing here knows the deploy's steps: the fake answers commands, and the tests read what
ran from `calls`."""

from __future__ import annotations

import io
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paramiko

from staging_ops.errors import StagingError
from staging_ops.inventory import App, Host, Slot
from staging_ops.render import candidate_unit, slot_units
from tests.unit import remote_usage

# What a scripted failure answers: (exit code, stdout, stderr), or an exception to raise.
Answer = tuple[int, str, str] | BaseException


@dataclass
class Release:
    commit: str
    branch: str
    ok: bool = False
    bad: bool = False


@dataclass(frozen=True)
class Call:
    """One remote script run: its name, its arguments, and whether it ran behind the lock's
    fence (lock-guard.sh)."""

    script: str
    args: tuple[str, ...]
    guarded: bool = False

    @property
    def verb(self) -> str:
        return self.args[VERB_AT.get(self.script, 0)] if self.args else ""


# Where a script that does several things takes its verb.
VERB_AT = {"deploy-restart.sh": 1}


@dataclass
class Fault:
    script: str
    verb: str | None
    answer: Answer
    times: int


@dataclass
class FakeDroplet:
    """One slot of a droplet, as its remote scripts see it."""

    app: App
    slot: Slot
    host: Host
    releases: dict[str, Release] = field(default_factory=dict)
    current: str | None = None
    candidate: str | None = None
    # unit -> the release it runs
    running: dict[str, str] = field(default_factory=dict)
    # (commit, role): that commit's `role` unit dies at start (roles: see `roles`)
    sick: set[tuple[str, str]] = field(default_factory=set)
    # (commit, type): that commit's `type` instances listen on every address, not loopback
    public: set[tuple[str, str]] = field(default_factory=set)
    # (commit, type): another process holds that commit's `type` instances' port (they listen
    # on nothing; the impostor answers their checks)
    squatted: set[tuple[str, str]] = field(default_factory=set)
    branches: dict[str, str] = field(default_factory=dict)
    available_kb: int = 8 * 1024 * 1024
    faults: list[Fault] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        app, slot = self.app, self.slot
        web, airflow, scheduler = slot_units(app, slot, ("web", "airflow", "scheduler"))
        self.roles = {
            web: "web",
            airflow: "airflow",
            scheduler: "scheduler",
            candidate_unit(app, slot, "web"): "web-candidate",
            candidate_unit(app, slot, "airflow"): "airflow-candidate",
        }
        cui, cairflow = slot.candidate_ports(self.host)
        self.ports = {
            slot.ui_port: web,
            slot.airflow_port: airflow,
            cui: candidate_unit(app, slot, "web"),
            cairflow: candidate_unit(app, slot, "airflow"),
        }

    # --- what a test sets up and reads

    def add_release(self, name: str, commit: str, branch: str = "main", ok: bool = True) -> None:
        self.releases[name] = Release(commit, branch, ok=ok)

    def serve(self, name: str) -> None:
        """`current` at `name`, every main unit running it."""
        self.current = name
        for unit, role in self.roles.items():
            if not role.endswith("-candidate"):
                self.running[unit] = name

    def fail(
        self, script: str, answer: Answer = (1, "", "boom"), verb: str | None = None, times: int = 1
    ) -> None:
        """The next `times` runs of `script` (with `verb`) answer `answer`."""
        self.faults.append(Fault(script, verb, answer, times))

    def ran(self, script: str, verb: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.script == script and verb in (None, c.verb)]

    @property
    def bad(self) -> set[str]:
        return {name for name, r in self.releases.items() if r.bad}

    def alive(self, unit: str) -> bool:
        release = self.running.get(unit)
        if release is None:
            return False
        return (self.releases[release].commit, self.roles.get(unit, "")) not in self.sick

    # --- the droplet's side

    def answer(self, call: Call) -> tuple[int, str, str]:
        remote_usage.check(call.script, call.args)  # as the script's usage header says
        self.calls.append(call)
        for fault in self.faults:
            if fault.times and fault.script == call.script and fault.verb in (None, call.verb):
                fault.times -= 1
                if isinstance(fault.answer, BaseException):
                    raise fault.answer
                return fault.answer
        handler = SCRIPTS.get(call.script)
        return handler(self, list(call.args)) if handler else (0, "", "")

    def http(self, unit: str, path: str) -> tuple[int, bytes]:
        """What the process of `unit` answers `path` (it runs its release's commit)."""
        release = self.releases[self.running[unit]]
        if self.roles[unit].startswith("airflow"):
            return 200, json.dumps({"metadatabase": {"status": "healthy"}}).encode()
        if path == "/api/version":
            return 200, json.dumps({"commit": release.commit}).encode()
        return 200, b"ok"

    def via_nginx(self, path: str) -> tuple[int, bytes]:
        """nginx: the main UI, else its backup the candidate, else 502."""
        main, backup = self.ports[self.slot.ui_port], candidate_unit(self.app, self.slot, "web")
        for unit in (main, backup):
            if self.alive(unit):
                return self.http(unit, path)
        return 502, b"bad gateway"


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _fetch(d: FakeDroplet, args: list[str]) -> tuple[int, str, str]:
    branch = args[4].removeprefix("refs/heads/").removesuffix("^{commit}")
    if branch not in d.branches:
        return int(args[5]), "", "not found"
    files = {"Procfile": None, "app.json": None}
    return 0, json.dumps({"commit": d.branches[branch], "files": files}) + "\n", ""


def _release(d: FakeDroplet, args: list[str]) -> tuple[int, str, str]:
    commit, name = args[1], _name(args[3])
    branch = next((b for b, c in d.branches.items() if c == commit), "?")
    d.releases[name] = Release(commit, branch)
    live = f"{args[8]}/../releases/{d.current}" if d.current else ""
    answer = {"venv": "reused", "key": "0123abcd", "live": live}
    return 0, f"exported\n{json.dumps(answer)}\n", ""


def _current(d: FakeDroplet, args: list[str]) -> tuple[int, str, str]:
    verb = args[0]
    if verb == "read":
        return 0, f"/srv/releases/{d.current}\n" if d.current else "", ""
    if verb == "set":
        d.current = args[2]
    elif verb == "clear":
        d.current = None
    return 0, "", ""


def _releases(d: FakeDroplet, args: list[str]) -> tuple[int, str, str]:
    verb = args[0]
    if verb == "list":
        listed = [
            {"name": name, "bad": r.bad, "verified": r.ok, "commit": r.commit, "branch": r.branch}
            for name, r in sorted(d.releases.items(), reverse=True)
        ]
        return 0, json.dumps(listed) + "\n", ""
    if verb == "record":
        d.releases[args[4]].ok = True
    return 0, "", ""  # `spec`: none written, the inventory's processes


def _mark_bad(d: FakeDroplet, args: list[str]) -> tuple[int, str, str]:
    d.releases[_name(args[0])].bad = True
    return 0, "", ""


def _candidate(d: FakeDroplet, args: list[str]) -> tuple[int, str, str]:
    verb, release, count, units = args[0], args[2], int(args[3]), args[4:]
    for unit in units:
        d.running.pop(unit, None)
    d.candidate = None
    if verb == "start":
        d.candidate = release
        for unit in units[:count]:
            d.running[unit] = release
    return 0, "", ""


def _restart(d: FakeDroplet, args: list[str]) -> tuple[int, str, str]:
    verb, units = args[1], [a.partition("=")[0] for a in args[3:]]
    for unit in units:
        if verb == "stop" or d.current is None:
            d.running.pop(unit, None)
        else:
            d.running[unit] = d.current
    return 0, json.dumps({"restarts_before": [0 for _ in units]}) + "\n", ""


def _verify_units(d: FakeDroplet, args: list[str]) -> tuple[int, str, str]:
    shown = [
        {"ActiveState": state, "SubState": "running" if state == "active" else state}
        | {"NRestarts": "0"}
        for state in ("active" if d.alive(unit) else "failed" for unit in args)
    ]
    return 0, json.dumps(shown) + "\n", ""


def _memory(d: FakeDroplet, args: list[str]) -> tuple[int, str, str]:
    return 0, json.dumps({"available": d.available_kb, "slots": [{}]}) + "\n", ""


def _listeners(d: FakeDroplet, args: list[str]) -> tuple[int, str, str]:
    on_port = {unit: port for port, unit in d.ports.items()}
    running = {}
    for unit, release in d.running.items():
        role = d.roles.get(unit, unit.rpartition(":")[2].removesuffix(".service"))
        ptype = role.removesuffix("-candidate")
        where = "candidate" if role.endswith("-candidate") else "current"
        public = (d.releases[release].commit, ptype) in d.public
        # Its own port on loopback, or (public) a server on every address.
        own = f"0100007F:{on_port[unit]:04X}" if unit in on_port else None
        if (d.releases[release].commit, ptype) in d.squatted:
            own = None
        running[f"{where}-{ptype}"] = ["00000000:1F41"] if public else [own] if own else []
    return 0, json.dumps({"slots": [running]}) + "\n", ""


def _instances(d: FakeDroplet, args: list[str]) -> tuple[int, str, str]:
    return (_memory if args[0] == "memory" else _listeners)(d, args[1:])


def _journal(d: FakeDroplet, args: list[str]) -> tuple[int, str, str]:
    return 0, f"the last lines of {args[0]}\n", ""


SCRIPTS: dict[str, Callable[[FakeDroplet, list[str]], tuple[int, str, str]]] = {
    "deploy-fetch.sh": _fetch,
    "deploy-release.sh": _release,
    "slot-current.sh": _current,
    "deploy-releases.sh": _releases,
    "deploy-mark-bad.sh": _mark_bad,
    "deploy-candidate.sh": _candidate,
    "deploy-restart.sh": _restart,
    "deploy-verify-units.sh": _verify_units,
    "slot-instances.sh": _instances,
    "slot-journal.sh": _journal,
}


def parse_command(command: str, guarded: bool = False) -> Call:
    """`sh -c TEXT NAME ARG...` (remote.script_command) -> the call; a command behind the
    lock's fence (lock-guard.sh's PROGRAM ARG...) is the call it guards."""
    words = shlex.split(command)
    if words[-1] == "2>&1":
        words = words[:-1]
    assert words[:2] == ["sh", "-c"], command[:80]
    script, args = words[3], tuple(words[4:])
    if script == "lock-guard.sh":
        program = args[args.index("--") + 1 :]
        # A script's own words, or a line of shell run as `sh -c LINE`.
        return parse_command(program[2] if len(program) == 3 else shlex.join(program), True)
    return Call(script, args, guarded)


class _HttpChannel:
    """A direct-tcpip channel to one port of the droplet: answers one HTTP request."""

    def __init__(self, droplet: FakeDroplet, unit: str):
        self.droplet, self.unit = droplet, unit
        self.request = b""

    def settimeout(self, timeout: float) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.request += data

    def makefile(self, mode: str) -> io.BytesIO:
        path = self.request.split(b" ", 2)[1].decode()
        status, body = self.droplet.http(self.unit, path)
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        return io.BytesIO(head + body)

    def close(self) -> None:
        pass


class _LockChannel:
    """The lock-hold.sh session: the lock is free."""

    def exec_command(self, command: str) -> None:
        pass

    def makefile(self, mode: str) -> io.StringIO:
        return io.StringIO("LOCKED\n")

    def shutdown_write(self) -> None:
        pass

    def exit_status_ready(self) -> bool:
        return True

    def close(self) -> None:
        pass


class _Transport:
    def __init__(self, droplet: FakeDroplet):
        self.droplet = droplet

    def is_active(self) -> bool:
        return True

    def open_session(self) -> _LockChannel:
        return _LockChannel()

    def open_channel(self, kind: str, dest: tuple[str, int], *args: object, **kw: object):
        unit = self.droplet.ports.get(dest[1])
        if unit is None or not self.droplet.alive(unit):
            raise paramiko.ChannelException(2, "Connect failed")
        return _HttpChannel(self.droplet, unit)


class _Client:
    def __init__(self, droplet: FakeDroplet):
        self.transport = _Transport(droplet)

    def get_transport(self) -> _Transport:
        return self.transport


class _Connection:
    def __init__(self, droplet: FakeDroplet):
        self.client = _Client(droplet)


class FakeRemote:
    """Stands in for remote.RemoteHost on the FakeDroplet."""

    def __init__(self, droplet: FakeDroplet):
        self.droplet = droplet
        self.host = droplet.host
        self.connection = _Connection(droplet)
        self.commands = 0

    def as_root(self, command: str) -> str:
        return command

    def run(
        self,
        command: str,
        *,
        check: bool = True,
        timeout: float | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> tuple[int, str, str]:
        self.commands += 1
        if command.endswith("date -u +%s.%N"):
            # The droplet's clock (heartbeat.py), alone or after the time the workers' restart
            # was done (now: the fake's restarts are done at once).
            now = f"{time.time():.9f}"
            return 0, (f"{now} {now}\n" if "more.done" in command else f"{now}\n"), ""
        code, out, err = self.droplet.answer(parse_command(command))
        for line in out.splitlines() if on_line else ():
            on_line(line)
        if check and code != 0:
            detail = " | ".join((err or out).strip().splitlines()[-3:])
            raise StagingError(f"{self.host.name}: command failed (exit {code}): {detail}")
        return code, out, err

    def close(self) -> None:
        pass


@dataclass
class FakeResponse:
    """What health.slot_get returns, as far as verify reads it."""

    status_code: int
    content: bytes

    def json(self) -> object:
        return json.loads(self.content)
