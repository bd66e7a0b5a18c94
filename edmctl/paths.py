"""Where edmctl keeps things: the home (registry and run folders) and the cache (detector weights)."""

import hashlib
import os
from pathlib import Path


def home() -> Path:
    """`$EDMCTL_HOME`, default `./runs`: the registry database and the run folders live here."""
    return Path(os.environ.get("EDMCTL_HOME", "runs"))


def cache_dir() -> Path:
    """`$EDMCTL_CACHE`, default `~/.cache/edmctl`: downloaded or user-provided weights (Inception)."""
    return Path(os.environ.get("EDMCTL_CACHE", Path.home() / ".cache" / "edmctl"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, then rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_figure(fig, path: Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure through a temporary file of the same suffix, then rename; the figure is closed."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        fig.savefig(tmp, dpi=dpi)
        tmp.replace(path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
