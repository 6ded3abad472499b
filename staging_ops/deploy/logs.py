"""`invoke logs`: a slot unit's log from the droplet (journalctl; the sandbox provides the
same); and the UI unit's last lines for a failed deploy's message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from staging_ops import parsing, remote
from staging_ops.deploy.steps import tail
from staging_ops.errors import BadInput, StagingError
from staging_ops.inventory import Inventory, Slot
from staging_ops.render import slot_units

if TYPE_CHECKING:
    from staging_ops.deploy.session import Deployer

SERVICE_NAMES = ("ui", "airflow-webserver", "airflow-scheduler")


def logs(
    inventory: Inventory, slot: Slot, service: str, lines: int, follow: bool, out: Any
) -> None:
    """Stream the unit's log from the droplet to `out`."""
    if service not in SERVICE_NAMES:
        raise BadInput(f"invalid service {service!r}: choose {', '.join(SERVICE_NAMES)}")
    if not 1 <= lines <= parsing.MAX_LOG_LINES:
        raise BadInput(f"-n must be between 1 and {parsing.MAX_LOG_LINES}, not {lines}")
    unit = slot_units(inventory.app, slot)[SERVICE_NAMES.index(service)]
    host = inventory.host_of(slot)
    session = remote.connect(host)
    try:
        command = remote.script_command(
            "slot-journal.sh", unit, lines, *(["follow"] if follow else [])
        )
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


def last_lines(deployer: Deployer, lines: int = 20, unit: str | None = None) -> str:
    """`unit`'s (default: the slot's UI unit's) last `lines` log lines."""
    command = remote.script_command("slot-journal.sh", unit or deployer.units[0], lines) + " 2>&1"
    _, out, err = deployer.run(command, check=False)
    return (out or err).rstrip()
