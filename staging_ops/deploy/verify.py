"""The `verify` step: /api/version on the UI port (through our SSH connection) and through
nginx (the slot's Host header and TLS name) must report the release's commit, and the slot's
units must stay up (remote script deploy-verify-units.sh); and `invoke verify`: the registry,
the droplet's `current` release and the slot's public /api/version must agree (drift.py)."""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import paramiko

from staging_ops.drift import Drift, LiveRelease, live_json, of_slot
from staging_ops.errors import StagingError
from staging_ops.health import CertificateCheck, airflow_health, certificate_check, slot_get
from staging_ops.inventory import Inventory, Slot
from staging_ops.jsondoc import JSONObject
from staging_ops.processes import AIRFLOW, WEB
from staging_ops.processes.status import Processes, process_lines, processes_json
from staging_ops.remote.listeners import listening_problems
from staging_ops.remote.live import read_live, slot_processes
from staging_ops.remote.scripts import home, script_command
from staging_ops.render import public_url
from staging_ops.slots.model import SlotRegistry

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer


def verify(
    deployer: Deployer,
    commit: str,
    timeout: float | None = None,
    units: list[str] | None = None,
) -> None:
    """/api/version on the UI port and then through nginx must report `commit`, and then
    each of `units` (default: every unit of the slot) must be up. A UI unit that is down
    (crashed at start, crash-looping) fails at once instead of at the timeout."""
    timeout = deployer.app.verify_timeout if timeout is None else timeout
    units = deployer.units if units is None else units
    deadline = time.monotonic() + timeout
    next_unit_check = time.monotonic() + 0.5
    where = "UI port"
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            seen = _via_ssh(deployer) if where == "UI port" else _via_nginx(deployer)
        except (OSError, paramiko.SSHException, ValueError, http.client.HTTPException) as exc:
            last = f"no answer ({type(exc).__name__})"
            seen = None
        if seen == commit:
            if where == "nginx":
                # The UI answers; Airflow's units must not have failed at start either.
                check_units_alive(deployer, units)
                return
            where = "nginx"
            continue
        if seen is not None:
            # The old process is gone after the restart: an answer is the new release's.
            raise StagingError(f"{where} serves commit {seen!r}, not {commit}")
        if time.monotonic() >= next_unit_check:
            check_units_alive(deployer, deployer.units[:1])
            next_unit_check = time.monotonic() + 1.0
        time.sleep(0.1)
    raise StagingError(f"{where}: {last} within {timeout:.0f}s")


class UnitFailed(StagingError):
    """A check of one unit's process failed: `unit` is the one whose log says why."""

    def __init__(self, message: str, unit: str = ""):
        super().__init__(message)
        self.unit = unit


@home("deploy-verify-units.sh")
def units_command(*units: str) -> str:
    """Each of `units`' ActiveState, SubState and NRestarts (unit_problem reads them)."""
    return script_command("deploy-verify-units.sh", *units)


def check_units_alive(deployer: Deployer, units: list[str]) -> None:
    """Each of `units` is up and has not restarted since our restart; one command."""
    _, out, _ = deployer.run(units_command(*units), check=False)
    problem = unit_problem(units, parse_units(out), deployer.restarts_before)
    if problem:
        failed = next((u for u in units if problem.startswith(u)), units[0])
        raise UnitFailed(problem, failed)


@dataclass(frozen=True)
class UnitShown:
    """One unit as deploy-verify-units.sh shows it: what systemctl did not say is unknown."""

    active: str = "unknown"
    sub: str = ""
    restarts: int | None = None


def parse_units(out: str) -> list[UnitShown]:
    """deploy-verify-units.sh's JSON line (an object of systemctl's properties a unit, in
    order) -> each unit shown; nothing at all (systemctl said nothing) -> []. StagingError if
    it is not that."""
    if not out.strip():
        return []
    try:
        found = json.loads(out)
        if not isinstance(found, list):
            raise TypeError("not an array")
        return [
            UnitShown(
                str(props.get("ActiveState", "unknown")),
                str(props.get("SubState", "")),
                int(n) if (n := str(props.get("NRestarts", ""))).isdigit() else None,
            )
            for props in found
        ]
    except (ValueError, TypeError, AttributeError):
        raise StagingError(f"deploy-verify-units.sh: unreadable answer {out[:200]!r}") from None


def unit_problem(
    units: list[str], shown: list[UnitShown], restarts_before: dict[str, int]
) -> str | None:
    """From deploy-verify-units.sh's answer (`shown`, the units in order): the first unit that
    failed, is inactive, died and waits to be restarted, or was restarted since our restart;
    or None. A unit systemctl said nothing of is unknown, not failed."""
    for n, unit in enumerate(units):
        state = shown[n] if n < len(shown) else UnitShown()
        restarted = state.restarts is not None and state.restarts > restarts_before.get(unit, 0)
        if state.sub == "auto-restart":
            return f"{unit} died and waits to be restarted: it does not stay up"
        if state.active in ("failed", "inactive") or restarted:
            return f"{unit} is {state.active}: it does not stay up"
    return None


def ssh_get(deployer: Deployer, port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
    """GET `path` from the droplet's 127.0.0.1:`port` through our SSH connection (a
    direct-tcpip channel: nothing but SSH is exposed); (status, body). A port nothing listens
    on raises paramiko's ChannelException; an answer slower than `timeout`, TimeoutError."""
    assert deployer.remote is not None
    transport = deployer.remote.connection.client.get_transport()
    channel = transport.open_channel(
        "direct-tcpip", ("127.0.0.1", port), ("127.0.0.1", 0), timeout=timeout
    )
    try:
        channel.settimeout(timeout)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.sock = _ClosedByUs(channel)  # type: ignore[assignment]
        conn.request("GET", path, headers={"Host": deployer.slot.subdomain})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        channel.close()


class _ClosedByUs:
    """A channel as http.client's socket, closed only by ssh_get. http.client closes its
    socket as soon as the headers say the server will close (HTTP/1.0, `Connection: close`),
    before it reads the body: a socket's reader keeps the socket open, a channel's does not,
    and a body that had not arrived yet was lost (IncompleteRead; 1 answer in 10 measured)."""

    def __init__(self, channel: paramiko.Channel):
        self._channel = channel

    def sendall(self, data: bytes) -> None:
        self._channel.sendall(data)

    def makefile(self, mode: str = "r") -> paramiko.ChannelFile:
        return self._channel.makefile(mode)

    def close(self) -> None:
        pass


def _via_ssh(deployer: Deployer) -> str | None:
    status, body = ssh_get(deployer, deployer.slot.ui_port, "/api/version")
    if status != 200:
        return None
    return json.loads(body).get("commit")


def _via_nginx(deployer: Deployer) -> str | None:
    response = slot_get(deployer.host, deployer.slot, "/api/version", timeout=5)
    if response.status_code != 200:
        return None
    return response.json().get("commit")


@dataclass(frozen=True)
class SlotVerdict:
    """`invoke verify`'s verdict on one slot (--json prints as_json): what its public
    /api/version answered (`served`), what the registry records, the release `current` points
    to (`live`), the drift between them, the certificate nginx serves, each declared process
    judged, and the problems: of the agreement and the certificate (`problems`, the line after
    "mismatch:"), one line per process that is not up and healthy (`process_problems`)."""

    slot: int
    identifier: str
    url: str
    # /api/version's JSON, as the app answered it (None: no 200 answer).
    served: JSONObject | None
    registry_commit: str | None
    registry_branch: str | None
    # The release `current` points to (None: not read, `unread` says why).
    live: LiveRelease | None
    unread: str
    drift: Drift
    problems: list[str]
    certificate: CertificateCheck
    processes: Processes | None
    process_problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems and not self.process_problems

    def as_json(self) -> JSONObject:
        everything = [*self.problems, *self.process_problems]
        return {
            "slot": self.slot,
            "identifier": self.identifier,
            "url": self.url,
            "served": self.served,
            "registry_commit": self.registry_commit,
            "registry_branch": self.registry_branch,
            "live": live_json(self.live, self.unread),
            "drift": self.drift.as_json(),
            "ok": self.ok,
            "problem": "; ".join(everything) or None,
            "problems": self.problems,
            "certificate": self.certificate.as_json(),
            "processes": processes_json(self.processes),
            "process_problems": self.process_problems,
        }


def verify_slot(inventory: Inventory, slot: Slot, registry: SlotRegistry) -> SlotVerdict:
    """The slot's three truths must agree: the commit the registry records, the commit of the
    release `current` points to on the droplet (one probe, read meanwhile), and the one its
    public /api/version serves; nginx's certificate for the slot must be sound; and every
    process the live release declares must be up and healthy (its unit, read by the same
    probe; Airflow's health answer per component), each one that is not a line of its own
    ("process_problems")."""
    state = registry.get(slot.id)
    host = inventory.host_of(slot)
    answer: JSONObject | None
    with ThreadPoolExecutor(max_workers=3) as pool:
        live_future = pool.submit(read_live, inventory, [slot], listening=True)
        # The certificate nginx serves for the slot: not covering it, or expiring within 14
        # days, is a problem too.
        certificate_future = pool.submit(certificate_check, host, slot)
        airflow_future = pool.submit(airflow_health, host, slot, 10)
        try:
            response = slot_get(host, slot, "/api/version", timeout=10)
            answer = response.json() if response.status_code == 200 else None
            problems = [] if answer else [f"HTTP {response.status_code}"]
        except (OSError, ValueError) as exc:  # requests' errors are OSErrors
            answer, problems = None, [f"no answer ({type(exc).__name__})"]
        read = live_future.result()
        certificate = certificate_future.result()
        airflow = airflow_future.result()
    processes = slot_processes(inventory.app, slot, read, ui_up=answer is not None, airflow=airflow)
    process_problems = process_lines(processes or {})
    # Only nginx and SSH may face the network, and what answers on a slot's port must be the
    # process started for it: each is a problem of its own, whatever the health answers say.
    live_procs = read.processes.get(slot.id)
    if slot.id in read.listening and live_procs is not None:
        own = {WEB: slot.ui_port, AIRFLOW: slot.airflow_port}
        ports = {t: own[t] for t in live_procs.spec(inventory.app).port_types}
        process_problems += listening_problems(read.listening[slot.id], ports)
    served = answer.get("commit") if isinstance(answer, dict) else None
    live, unread = read.releases.get(slot.id), read.unread.get(slot.id, "not read")
    drift = of_slot(state.commit, state.status, live, served, unread)
    if answer is not None and served is None:
        problems.append("/api/version answers without a commit")
    if drift.state != "ok":
        problems.append(str(drift.message))
    if drift.unverified:
        # The verdict cannot name the slot's command; the operator needs it.
        problems.append(f"`invoke rollback --slot {slot.id}` goes back to the last verified one")
    if certificate.problem:
        problems.append(certificate.problem)
    return SlotVerdict(
        slot=slot.id,
        identifier=slot.identifier,
        url=f"{public_url(host, slot)}/api/version",
        served=answer,
        registry_commit=state.commit,
        registry_branch=state.branch,
        live=live,
        unread=unread,
        drift=drift,
        problems=problems,
        certificate=certificate,
        processes=processes,
        process_problems=process_problems,
    )
