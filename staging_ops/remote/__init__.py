"""Remote work on a droplet: the connection (connection.py), the one-command facts probe
(facts.py, probe.py runs on the droplet), files in one SFTP session (files.py), tunnels
(tunnel.py); where a host's connection goes (route.py: the ssh config, jump hosts) and the key
it must present (known_hosts.py)."""

from staging_ops.remote.connection import RemoteHost, Unreachable, connect, quote
from staging_ops.remote.facts import gather_facts
from staging_ops.remote.files import Link, Write, apply_files
from staging_ops.remote.known_hosts import HostKeyChanged, HostKeyRefused, UnknownHostKey
from staging_ops.remote.scripts import script_command
from staging_ops.remote.tunnel import tunnel

__all__ = [
    "HostKeyChanged",
    "HostKeyRefused",
    "Link",
    "RemoteHost",
    "UnknownHostKey",
    "Unreachable",
    "Write",
    "apply_files",
    "connect",
    "gather_facts",
    "quote",
    "script_command",
    "tunnel",
]
