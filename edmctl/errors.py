"""The two ways a command fails, each with its exit code (README: exit 0 success, 1 failed check, 2 bad input)."""


class UserError(Exception):
    """Bad input: a file, field or value the user can fix. One clear sentence; exit code 2; nothing written."""

    exit_code = 2


class CheckFailed(Exception):
    """A run or check that completed but failed (a reproduction mismatch, a failed trial); exit code 1."""

    exit_code = 1


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) stopped a command: what it `kept` and the command that `resume`s it (None: the same
    command again); exit code 130, as a shell gives a process stopped by SIGINT."""

    exit_code = 130

    def __init__(self, kept: str, resume: str | None = None):
        super().__init__(kept)
        self.kept, self.resume = kept, resume
