"""The two ways a command fails, each with its exit code (README: exit 0 success, 1 failed check, 2 bad input)."""


class UserError(Exception):
    """Bad input: a file, field or value the user can fix. One clear sentence; exit code 2; nothing written."""

    exit_code = 2


class CheckFailed(Exception):
    """A run or check that completed but failed (a reproduction mismatch, a failed trial); exit code 1."""

    exit_code = 1
