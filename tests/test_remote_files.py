"""Files written over SFTP: a session that dies in the middle of an upload is one line naming
the host (never a traceback), and the target is left whole."""

from __future__ import annotations

import threading

import pytest

from staging_ops import remote
from staging_ops.errors import StagingError
from staging_ops.inventory import load_inventory


def test_a_connection_lost_during_an_upload_is_one_line_and_the_file_stays_whole(sandbox):
    host = load_inventory(sandbox.inventory_path).hosts["h1"]
    target = sandbox.hosts[0].root / "srv/staging/upload-probe.txt"
    target.write_text("before\n")
    session = remote.connect(host)
    big = remote.Write(str(target), "x" * (64 * 1024 * 1024), 0o644)
    # Cut the SSH transport while the 64 MiB file is on its way.
    cut = threading.Timer(0.3, session.connection.client.get_transport().close)
    cut.start()
    try:
        # Depending on where the cut lands: paramiko's "Socket is closed" (an OSError) or an
        # SSHException; either way a StagingError of one line.
        with pytest.raises(StagingError) as raised:
            remote.apply_files(session, [big], [])
    finally:
        cut.cancel()
        session.close()
    assert str(raised.value).startswith("h1: ")
    assert "\n" not in str(raised.value)
    assert target.read_text() == "before\n"
    target.unlink()
