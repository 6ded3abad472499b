"""Errors that map to the operator-facing exit codes (see README, "Exit codes")."""


class StagingError(Exception):
    """Something failed; the message says what and in which state things are. Exit 1."""

    exit_code = 1
    # What the Staging API's error body says besides the message ({"error", "code"}), so that a
    # client tells the errors apart by it, not by the message's text.
    code = "failed"


class BadInput(StagingError):
    """Bad input or configuration, detected before anything was touched. Exit 2."""

    exit_code = 2
    code = "bad_input"


class Conflict(StagingError):
    """Slot held by another task, deploy lock held, no free slot. Exit 3."""

    exit_code = 3
    code = "conflict"
