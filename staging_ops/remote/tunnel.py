"""An SSH tunnel to a port as the droplet sees it (its PostgreSQL, for one)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from invoke.exceptions import ThreadException

from staging_ops.errors import StagingError
from staging_ops.remote.connection import RemoteHost


@contextlib.contextmanager
def tunnel(remote: RemoteHost, remote_host: str, remote_port: int) -> Iterator[int]:
    """An SSH tunnel (Fabric forward_local) to remote_host:remote_port as seen from the
    droplet; yields the local port on 127.0.0.1. A refused tunnel becomes one clear error
    (Fabric re-raises its tunnel threads' errors when the tunnel closes)."""
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
        reasons = {str(w.value) for w in exc.exceptions} or {"tunnel failed"}
        raise StagingError(
            f"{remote.host.name}: tunnel to {remote_host}:{remote_port}: {'; '.join(reasons)}"
        ) from None
