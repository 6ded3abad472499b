"""Errors that map to the operator-facing exit codes (see README, "Exit codes")."""


class StagingError(Exception):
    """Something failed; the message says what and in which state things are. Exit 1."""

    exit_code = 1


class BadInput(StagingError):
    """Bad input or configuration, detected before anything was touched. Exit 2."""

    exit_code = 2


class Conflict(StagingError):
    """Slot held by another task, deploy lock held, no free slot. Exit 3."""

    exit_code = 3
