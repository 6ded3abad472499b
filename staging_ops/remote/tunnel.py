"""An SSH tunnel to a port as the droplet sees it (its PostgreSQL, for one)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from invoke.exceptions import ThreadException

from staging_ops.remote.connection import RemoteHost


@contextlib.contextmanager
def tunnel(remote: RemoteHost, remote_host: str, remote_port: int) -> Iterator[int]:
    """An SSH tunnel (Fabric forward_local) to remote_host:remote_port as seen from the
    droplet; yields the local port on 127.0.0.1. The body's own error is what a failure
    reports (the database connection names host and reason); the errors Fabric re-raises from
    its tunnel threads when the tunnel closes are of attempts the body already retried past."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        local_port = probe.getsockname()[1]
    body_error: BaseException | None = None
    try:
        with remote.connection.forward_local(
            local_port, remote_port=remote_port, remote_host=remote_host, local_host="127.0.0.1"
        ):
            try:
                yield local_port
            except BaseException as exc:
                body_error = exc
                raise
    except ThreadException as exc:
        if body_error is not None:
            raise body_error from None
        # The body succeeded: the tunnel did its work. A tunnel thread's error is then from a
        # connection the body retried past (admin_connect retries while the listener starts,
        # and sshd may reset the first attempt), not a failure of this run.
        del exc
