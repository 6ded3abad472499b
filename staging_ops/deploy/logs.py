"""`invoke logs`: a slot unit's log from the droplet (journalctl; the sandbox provides the
same); and the UI unit's last lines for a failed deploy's message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from staging_ops import parsing, remote
from staging_ops.deploy import releases_sh
from staging_ops.deploy.steps import tail
from staging_ops.errors import BadInput, StagingError
from staging_ops.inventory import Inventory, Slot
from staging_ops.processes import PORT_TYPES, spec_from_json
from staging_ops.processes.model import TYPE_NAME
from staging_ops.remote.scripts import home, script_command
from staging_ops.render import SERVICES, candidate_unit, process_unit
from staging_ops.slot_layout import SlotPaths

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

SERVICE_NAMES = tuple(SERVICES)
CANDIDATE = "-candidate"


def service_unit(inventory: Inventory, slot: Slot, service: str) -> str:
    """The unit `invoke logs --service` names: a process type (web, airflow, scheduler, or a
    Procfile's own worker type), a port type's candidate (`web-candidate`), or one of the unit
    names of before process types (ui, airflow-webserver, airflow-scheduler)."""
    app = inventory.app
    if service in SERVICES:
        return process_unit(app, slot, SERVICES[service][1])
    for legacy, (_, ptype) in SERVICES.items():
        if service == legacy + CANDIDATE and ptype in PORT_TYPES:
            return candidate_unit(app, slot, ptype)
    base = service.removesuffix(CANDIDATE)
    if service.endswith(CANDIDATE) and base in PORT_TYPES:
        return candidate_unit(app, slot, base)
    if TYPE_NAME.match(service) and not service.endswith(CANDIDATE):
        return process_unit(app, slot, service)
    raise BadInput(f"invalid service {service!r}: choose {CHOICES}")


CHOICES = "web, airflow, scheduler, a Procfile's process type, web-candidate, airflow-candidate"


def _declared(session: remote.RemoteHost, inventory: Inventory, slot: Slot, service: str) -> None:
    """A worker type of the app's own must be one the live release declares (BadInput, exit 2,
    naming those it does): there is no unit to read otherwise."""
    paths = SlotPaths(inventory.host_of(slot), slot)
    command = releases_sh.spec_command(paths.root, "current")
    _, out, _ = session.run(command, check=False)
    spec = spec_from_json(out.strip() or None, inventory.app)
    if service not in spec.types:
        raise BadInput(
            f"{slot.identifier}: its live release declares no process {service!r} "
            f"(it runs {', '.join(spec.types) or 'nothing'}); choose {CHOICES}"
        )


def logs(
    inventory: Inventory, slot: Slot, service: str, lines: int, follow: bool, out: Any
) -> None:
    """Stream the unit's log from the droplet to `out`."""
    unit = service_unit(inventory, slot, service)
    if not 1 <= lines <= parsing.MAX_LOG_LINES:
        raise BadInput(f"-n must be between 1 and {parsing.MAX_LOG_LINES}, not {lines}")
    host = inventory.host_of(slot)
    session = remote.connect(host)
    try:
        if service not in SERVICES and service.removesuffix(CANDIDATE) not in (
            *PORT_TYPES,
            *SERVICES,
        ):
            _declared(session, inventory, slot, service)
        command = journal_command(unit, lines, "follow" if follow else "")
        # stderr is kept (hide), not echoed: a failure is reported in our one line instead.
        result = session.connection.run(
            session.as_root(command),
            out_stream=out,
            warn=True,
            hide="err",
            pty=False,
            in_stream=False,
        )
    finally:
        session.close()
    if result.exited != 0:
        raise StagingError(
            f"{slot.identifier}: journalctl -u {unit} failed on {host.name} "
            f"(exit {result.exited}): {tail(result.stderr, 1)}"
        )


@home("slot-journal.sh")
def journal_command(unit: str, lines: int, since: str = "") -> str:
    """UNIT's last LINES log lines; `since` "follow" (then every new line) or "this-start"
    (only those of its latest start); its answer is the log itself."""
    return script_command("slot-journal.sh", unit, lines, *([since] if since else []))


def last_lines(deployer: Deployer, lines: int = 20, unit: str | None = None) -> str:
    """`unit`'s (default: the slot's UI unit's) last `lines` log lines of its latest start."""
    unit = unit or deployer.units[0]
    command = journal_command(unit, lines, "this-start") + " 2>&1"
    _, out, err = deployer.run(command, check=False)
    return (out or err).rstrip()
