"""The git commit (and uncommitted diff) of the checkout edmctl runs from: what runs record as their code version
and `edmctl --version` prints. Stdlib only, so `--version` imports no registry."""

import os
import subprocess
from pathlib import Path

GIT_TIMEOUT_S = 5.0


def find_repo(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding `.git` (a folder, or a file for worktrees/submodules)."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def git_state(repo: Path) -> tuple[str | None, bytes]:
    """(HEAD commit, diff of tracked files against HEAD); (None, b"") when git fails or times out."""
    head = _git(repo, "rev-parse", "HEAD")
    if head is None:
        return None, b""
    diff = _git(repo, "diff", "HEAD", "--binary") or b""
    return head.decode().strip(), diff


def _git(repo: Path, *args: str) -> bytes | None:
    try:
        result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, timeout=GIT_TIMEOUT_S,
                                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"}, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None
