"""Files written over SFTP: a session that dies in the middle of an upload is one line naming
the host (never a traceback), and the target is left whole."""

from __future__ import annotations

import pytest

from staging_ops import remote
from staging_ops.errors import StagingError
from staging_ops.inventory import load_inventory


def _drop_while_awaiting_chmod(session: remote.RemoteHost) -> None:
    """Arms `session` so that its SFTP session dies at one known point: the temp file is
    written and closed, its chmod request has gone out, and the client waits for the answer.
    The transport is closed from inside that wait and the wait ends in end-of-file, as for a
    connection lost before the answer came: paramiko's SSHException "Server connection
    dropped", every time. (The answer may already sit in the channel's buffer, sshd being
    quick; it is dropped with the connection, else the drop would land at chown instead.)"""
    open_sftp = session.open_sftp

    def open_armed():
        sftp = open_sftp()
        channel, chmod = sftp.get_channel(), sftp.chmod
        armed = False
        recv = channel.recv

        def recv_or_drop(nbytes: int) -> bytes:
            if not armed:
                return recv(nbytes)
            channel.get_transport().close()
            return b""

        def chmod_then_drop(path: str, mode: int) -> None:
            nonlocal armed
            armed = True
            chmod(path, mode)

        channel.recv = recv_or_drop
        sftp.chmod = chmod_then_drop
        return sftp

    session.open_sftp = open_armed


def test_a_connection_lost_during_an_upload_is_one_line_and_the_file_stays_whole(sandbox):
    host = load_inventory(sandbox.inventory_path).hosts["h1"]
    directory = sandbox.hosts[0].root / "srv/staging"
    target = directory / "upload-probe.txt"
    target.write_text("before\n")
    session = remote.connect(host)
    _drop_while_awaiting_chmod(session)
    try:
        with pytest.raises(StagingError) as raised:
            remote.apply_files(session, [remote.Write(str(target), "after\n", 0o644)], [])
    finally:
        session.close()
    assert str(raised.value) == "h1: connection lost during the upload: Server connection dropped: "
    assert target.read_text() == "before\n"
    # The temp file the lost session left beside the target (never renamed over it).
    (left,) = directory.glob(".upload-probe.txt.staging-ops-*")
    assert left.read_text() == "after\n"
    left.unlink()
    target.unlink()
