"""The remote layer's own error: a host not reached (or refused: known_hosts.HostKeyRefused);
and how a failure's reason reads in one line."""

from staging_ops.errors import StagingError


class Unreachable(StagingError):
    """A host that cannot be reached; the message says which and why."""


def reason(exc: BaseException) -> str:
    """What went wrong, for a one-line message: the exception's text, else its type's name
    (paramiko's EOFError and some SSHExceptions have no text; an exception is always truthy,
    so `exc or type(exc).__name__` printed nothing)."""
    return str(exc) or type(exc).__name__
