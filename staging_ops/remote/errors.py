"""The remote layer's own error: a host not reached (or refused: known_hosts.HostKeyRefused)."""

from staging_ops.errors import StagingError


class Unreachable(StagingError):
    """A host that cannot be reached; the message says which and why."""
