"""remote.errors.reason: a failure's reason in one line, never empty."""

from __future__ import annotations

import paramiko
import pytest

from staging_ops.remote.errors import reason


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (EOFError(), "EOFError"),  # paramiko's exec_command on a closed transport
        (paramiko.SSHException(), "SSHException"),
        (paramiko.SSHException("Server connection dropped: "), "Server connection dropped: "),
        (OSError(104, "Connection reset by peer"), "[Errno 104] Connection reset by peer"),
    ],
)
def test_a_reason_is_the_text_else_the_type(exc, said):
    assert reason(exc) == said
