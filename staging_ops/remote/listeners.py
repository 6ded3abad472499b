"""The TCP ports a slot's instances listen on, read by remote script slot-instances.sh
(`listening`): only nginx and SSH may listen beyond loopback on the droplet, so a slot's
process that binds every address (a server told only `$PORT`, whose default host is 0.0.0.0)
fails its deploy (deploy/loopback.py) and is a problem `verify` names.

The kernel writes a socket's local address in hex, in the droplet's byte order by 32-bit word
(x86-64 and arm64 droplets are little-endian: 127.0.0.1:8001 is "0100007F:1F41"); `decode`
reads that, whatever the operator's machine is."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from staging_ops.errors import StagingError
from staging_ops.processes import AIRFLOW, WEB
from staging_ops.remote.scripts import home, script_command

SCRIPT = "slot-instances.sh"


@dataclass(frozen=True)
class Listening:
    """One listening socket: its address and port."""

    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int

    @property
    def loopback(self) -> bool:
        """127.0.0.0/8, ::1, or an IPv4-mapped loopback (::ffff:127.0.0.1)."""
        mapped = getattr(self.address, "ipv4_mapped", None)
        return self.address.is_loopback or bool(mapped and mapped.is_loopback)

    def __str__(self) -> str:
        mapped = getattr(self.address, "ipv4_mapped", None)
        if mapped:
            return f"[::ffff:{mapped}]:{self.port}"
        if self.address.version == 6:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


@home(SCRIPT, "listening")
def listeners_command(*slot_dirs: str) -> str:
    """The command that lists what each running instance of the slots at `slot_dirs` listens
    on."""
    return script_command(SCRIPT, "listening", *slot_dirs)


# A slot's running instances (`current-web`, ...) and the sockets each one listens on.
SlotListening = dict[str, tuple[Listening, ...]]


def decode(local: str, byteorder: str = "little") -> Listening:
    """/proc/net/tcp{,6}'s `ADDRESS:PORT` (hex) -> Listening; ValueError if it is not that."""
    hex_address, _, hex_port = local.partition(":")
    raw = bytes.fromhex(hex_address)
    if len(raw) not in (4, 16) or not hex_port:
        raise ValueError(f"not a socket address: {local!r}")
    if byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return Listening(ipaddress.ip_address(raw), int(hex_port, 16))


def parse_listeners(out: str, count: int) -> tuple[SlotListening, ...]:
    """slot-instances.sh listening's JSON line for `count` slot directories -> each slot's running
    instances and their sockets, in order; StagingError if it is not that."""
    try:
        found = json.loads(out)["slots"]
        slots = tuple(
            {str(name): tuple(decode(str(a)) for a in heard) for name, heard in slot.items()}
            for slot in found
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        raise StagingError(f"{SCRIPT}: unreadable answer {out[:200]!r}") from None
    if len(slots) != count:
        raise StagingError(f"{SCRIPT}: {len(slots)} slots answered, {count} asked")
    return slots


def beyond_loopback(listening: tuple[Listening, ...]) -> tuple[Listening, ...]:
    """The sockets of `listening` that any other machine could reach."""
    return tuple(s for s in listening if not s.loopback)


def listens_beyond_loopback(ptype: str, where: str, listening: tuple[Listening, ...]) -> str | None:
    """The one line a `where` `ptype` instance listening on `listening` fails with; None when
    all of it is loopback."""
    outside = beyond_loopback(listening)
    if not outside:
        return None
    addresses = ", ".join(sorted({str(s) for s in outside}))
    mend = (
        "bind it to 127.0.0.1 (e.g. `--bind 127.0.0.1:$PORT`)"
        if ptype in (WEB, AIRFLOW)
        else "a worker serves no one: turn its server off (Airflow's log server: "
        "`--skip-serve-logs`) or bind it to 127.0.0.1"
    )
    return (
        f"{ptype} ({where}) listens on {addresses}, beyond loopback: only nginx may face "
        f"the network; {mend}"
    )


def misses_its_port(
    ptype: str, where: str, listening: tuple[Listening, ...], port: int
) -> str | None:
    """The one line a `where` `ptype` instance fails with when it does not itself listen on
    loopback `port`, its own: what answered there is another process (one that held the port
    first), not what was started; None when it does."""
    if any(s.port == port and s.loopback for s in listening):
        return None
    return (
        f"{ptype} ({where}) does not listen on 127.0.0.1:{port}, its port: another process "
        "answers there"
    )


def listening_problems(running: SlotListening, ports: dict[str, int]) -> list[str]:
    """`verify`'s lines for a slot whose running instances listen on `running`: each instance
    that listens beyond loopback, and each live port type (`ports`: type -> its port) whose
    running main instance does not listen on its port itself."""
    problems = []
    for instance, sockets in sorted(running.items()):
        where, _, ptype = instance.partition("-")
        line = listens_beyond_loopback(ptype, where, sockets)
        if line:
            problems.append(line)
    for ptype, port in ports.items():
        # One that does not run at all is `down` already (processes/status.py), not this.
        if f"current-{ptype}" not in running:
            continue
        line = misses_its_port(ptype, "current", running[f"current-{ptype}"], port)
        if line:
            problems.append(line)
    return problems


def listens_elsewhere(listening: tuple[Listening, ...], port: int) -> str | None:
    """What to add to the failure of a port type's check when its instance listens, but not
    on `port`, its own (a command that names a port of its own instead of `$PORT`); None
    otherwise."""
    if not listening or any(s.port == port for s in listening):
        return None
    shown = ", ".join(sorted({str(s) for s in listening}))
    return f"it listens on {shown} instead: it must serve $PORT ({port})"
