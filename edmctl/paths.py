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
