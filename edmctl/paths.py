"""Where edmctl keeps things: the home (registry and run folders) and the cache (detector weights)."""

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from edmctl.errors import UserError


def home() -> Path:
    """`$EDMCTL_HOME`, default `./runs`: the registry database and the run folders live here."""
    return Path(os.environ.get("EDMCTL_HOME", "runs"))


def cache_dir() -> Path:
    """`$EDMCTL_CACHE`, default `~/.cache/edmctl`: downloaded or user-provided weights (Inception)."""
    return Path(os.environ.get("EDMCTL_CACHE", Path.home() / ".cache" / "edmctl"))


def make_dirs(folder: Path) -> Path:
    """`mkdir -p` with the modes the user's umask gives; a UserError naming the folder when it cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"Cannot create the folder {folder}: {e.strerror or e}; pick a writable location.") from None
    return folder


@contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """A binary file at a temporary name in `path`'s folder; when the block ends without an error it is fsynced and
    renamed to `path`, else removed: never half a file under the real name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, then rename: never half a file."""
    with atomic_open(path) as f:
        f.write(data)


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_figure(fig, path: Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure (format from the suffix) through `atomic_open`; the figure is closed."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_open(path) as f:
            fig.savefig(f, format=path.suffix.lstrip("."), dpi=dpi)
    finally:
        plt.close(fig)
    return path


NAME_MAX = 255  # bytes in one path component (Linux, macOS)
PATH_MAX = 4096  # bytes in a whole path (Linux)


def check_output(path: Path, what: str, folder: bool = False) -> None:
    """Before any work: `path` (a file, or a folder when `folder`) can be created or replaced — names within the
    file system's limits, no file where a folder has to be, no folder where the file goes, and the nearest
    existing folder writable. UserError naming `what` (e.g. "--out") otherwise."""
    from edmctl.errors import UserError

    path = Path(path)
    long = [part for part in path.parts if len(os.fsencode(part)) > NAME_MAX]
    if long or len(os.fsencode(str(path.absolute()))) >= PATH_MAX:
        raise UserError(f"{what} {str(path)[:60]!r}...: the name is too long for the file system "
                        f"(at most {NAME_MAX} bytes a name, {PATH_MAX} a path); use a shorter path.")
    if path.is_dir() and not folder:
        raise UserError(f"{what} {str(path)!r} is a folder; give a file name.")
    if path.exists() and not path.is_dir() and folder:
        raise UserError(f"{what} {str(path)!r} is a file; give a folder.")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"{what} {str(path)!r} cannot be created: {str(existing)!r} is a file, not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK) or (path.is_file() and not os.access(path, os.W_OK)):
        raise UserError(f"{what} {str(path)!r} is not writable (no permission in {str(existing)!r}).")
