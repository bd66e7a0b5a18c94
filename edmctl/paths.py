"""Where edmctl keeps things: the home (registry and run folders) and the cache (detector weights); how files
are written there.

Every file is written through a temporary file in the target's folder, then renamed (`atomic_open`). The
temporary name is random and created exclusively without following links (`tempfile.mkstemp`: O_EXCL |
O_NOFOLLOW), so a link planted at a predictable name cannot redirect a write. Files and folders get the modes
the user's umask gives (mkstemp and mkdtemp alone would make them private, 0600 / 0700). A writer holds an
exclusive lock (flock) on its temporary file or staging folder while it works; `remove_leftovers` removes those
whose lock nobody holds (their writer was killed), never one in use, in any container sharing the folder.
"""

import fcntl
import hashlib
import os
import shutil
import socket
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from edmctl.errors import UserError


def home() -> Path:
    """`$EDMCTL_HOME`, default `./runs`: the registry database and the run folders live here."""
    return folder_from_env("EDMCTL_HOME", Path("runs"))


def cache_dir() -> Path:
    """`$EDMCTL_CACHE`, default `~/.cache/edmctl`: downloaded or user-provided weights (Inception)."""
    return folder_from_env("EDMCTL_CACHE", Path.home() / ".cache" / "edmctl")


def folder_from_env(name: str, default: Path) -> Path:
    """The folder environment variable `name` names, `~` expanded; unset or empty: `default`. Blanks (a folder ' '
    made in the current one), a `~user` with no such user and a link that loops are UserErrors naming `name`."""
    text = os.environ.get(name, "")
    if not text:
        return default
    if not text.strip():
        raise UserError(f"{name}={text!r} is blank; unset it (default {default}) or name a folder.")
    try:
        folder = Path(text).expanduser()
        folder.resolve()
    except RuntimeError as e:  # `~nouser`; a symbolic link loop (Python < 3.13)
        raise UserError(f"{name}={text!r}: {str(e).rstrip('.')}; name a folder.") from None
    except OSError as e:  # a symbolic link loop (Python >= 3.13)
        raise UserError(f"{name}={text!r}: {e.strerror or e}; name a folder.") from None
    return folder


def make_dirs(folder: Path) -> Path:
    """`mkdir -p` with the modes the user's umask gives; a UserError naming the folder when it cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"Cannot create the folder {folder}: {e.strerror or e}; pick a writable location.") from None
    return folder


def check_code_folder(folder: Path, what: str) -> None:
    """Refuse to keep code that edmctl loads again (pickles) where another user could replace it: `folder` must not
    be world-writable, nor any folder above it unless it has the sticky bit (as /tmp does: others cannot replace
    what is ours inside it)."""
    _check_places((folder, *folder.parents), what, folder)


def check_code_file(path: Path, what: str) -> None:
    """Refuse to load code (TorchScript) that another user wrote or could replace: `path` must be the user's (or
    root's) and not world-writable, and no folder above it world-writable without the sticky bit."""
    info = path.stat()
    if info.st_uid not in (os.getuid(), 0):
        raise UserError(f"{path} belongs to another user (uid {info.st_uid}); {what} is code, and edmctl loads only "
                        f"files of yours or root's: copy it to a folder of your own.")
    _check_places((path, *path.parents), what, path)


def _check_places(places, what: str, target: Path) -> None:
    """The first place must not be world-writable; the folders after it may be, with the sticky bit."""
    for i, place in enumerate(places):
        try:
            mode = place.stat().st_mode
        except OSError:
            continue  # not made yet: edmctl makes it with the user's umask
        if mode & stat.S_IWOTH and (i == 0 or not mode & stat.S_ISVTX):
            raise UserError(f"{place} is writable by every user, and {what} would be read from {target}; remove "
                            f"that permission (chmod o-w {place}) or use a folder of your own.")


TEMP_SUFFIX = ".tmp"  # temporary files: .<name>.<random>.tmp
STAGING_MARK = ".staging-"  # staging folders: .<name>.staging-<random>
NAME_KEEP = 100  # characters of the target's name kept in a temporary name (a name may be up to 255 bytes)
LEFTOVER_AGE_S = 10.0  # a leftover younger than this may be one whose writer has not locked it yet


def umask() -> int:
    """The process's umask (from /proc where there is one; else set and restored at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode `open()` would give a new file: 0666 less the umask."""
    return 0o666 & ~umask()


def _refused_as_user_error(target: Path, create):
    """`create()` (a temporary name in `target`'s folder); a folder that refuses new entries (read-only, full, a
    virtual file system) is a UserError naming `target`. A name too long stays an OSError (the CLI names it)."""
    import errno

    try:
        return create()
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise
        raise UserError(f"Cannot write {target}: {e.strerror or e} in {target.parent}; pick a writable location.") from None


@contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """A binary file at a random temporary name in `path`'s folder (created exclusively, never through a link,
    locked while open, with the umask's mode); when the block ends without an error it is fsynced and renamed to
    `path`, else removed: never half a file under the real name. Leftovers of killed writers of the same name
    are removed first."""
    path = Path(path)
    make_dirs(path.parent)
    remove_leftovers(path.parent, prefix=f".{path.name[:NAME_KEEP]}.")
    fd, tmp = _refused_as_user_error(path, lambda: tempfile.mkstemp(prefix=f".{path.name[:NAME_KEEP]}.", suffix=TEMP_SUFFIX,
                                                                    dir=path.parent))
    f = open(tmp, "wb", opener=lambda _name, _flags: fd)
    renamed = False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.fchmod(fd, file_mode())
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        renamed = True
    finally:
        f.close()
        if not renamed:
            Path(tmp).unlink(missing_ok=True)


@contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A new folder beside `target` (random name, the umask's mode, locked while in use) for building `target`'s
    content before renaming it into place; removed at the end unless renamed away. Staging folders of killed
    writers of the same target are removed first."""
    target = Path(target)
    make_dirs(target.parent)
    remove_leftovers(target.parent, prefix=f".{target.name[:NAME_KEEP]}.")
    staging = Path(_refused_as_user_error(target, lambda: tempfile.mkdtemp(prefix=f".{target.name[:NAME_KEEP]}{STAGING_MARK}",
                                                                            dir=target.parent)))
    fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.chmod(staging, 0o777 & ~umask())
        yield staging
    finally:
        os.close(fd)
        shutil.rmtree(staging, ignore_errors=True)


def is_leftover_name(name: str) -> bool:
    """A temporary file or staging folder name of `atomic_open` / `staging_dir`."""
    return name.startswith(".") and (name.endswith(TEMP_SUFFIX) or STAGING_MARK in name)


def _abandoned(entry: os.DirEntry) -> bool:
    """Older than `LEFTOVER_AGE_S` and nobody holds its lock (its writer is gone); a planted link counts too."""
    try:
        if entry.is_symlink():
            return True
        if time.time() - entry.stat(follow_symlinks=False).st_mtime < LEFTOVER_AGE_S:
            return False
        fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if entry.is_dir(follow_symlinks=False) else 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False  # locked: its writer is alive
    finally:
        os.close(fd)


def remove_leftovers(folder: Path, prefix: str = ".") -> list[Path]:
    """Remove the temporary files and staging folders in `folder` (names starting with `prefix`) that killed
    writers left behind (see `_abandoned`); returns what was removed."""
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(prefix) and is_leftover_name(e.name)]
    except OSError:
        return []
    removed = []
    for entry in entries:
        if _abandoned(entry):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return removed


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, then rename: never half a file."""
    with atomic_open(path) as f:
        f.write(data)


def read_npz(path: Path, what: str) -> dict:
    """Every array of an .npz, read at once without pickles; a file that is not one (text, empty, truncated, a
    pickle) is a UserError naming `what` and `path`. (numpy takes any file that is neither .npz nor .npy for a
    pickle, and says so with advice to load it unsafely: edmctl never does.)"""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError) as e:
        reason = "not an .npz archive" if "pickle" in str(e) or isinstance(e, AttributeError) else str(e) or type(e).__name__
        raise UserError(f"{what} {path} is not a readable npz ({reason}).") from None


# What torch's weights-only unpickler raises on bytes that are not a torch file (text, truncated, another format).
UNREADABLE_TENSORS = (RuntimeError, EOFError, OSError, ValueError, AttributeError, IndexError, KeyError, TypeError)


def read_tensors(path: Path, what: str):
    """A torch file read with `weights_only=True` (plain tensors and containers, never code) on the CPU; a file
    that is not one is a UserError naming `what` and `path` (the unpickler's own error type says little)."""
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # a damaged file can make torch warn about its pickle protocol first
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, *UNREADABLE_TENSORS) as e:
        raise UserError(f"{what} {path} cannot be read as plain tensor data ({type(e).__name__}); it is damaged or "
                        f"not an edmctl file.") from None


def not_here(path: Path) -> str:
    """Why a recorded file is missing, for a message: the registry may be shared by nodes that do not all mount
    the filesystem the run wrote to."""
    return (f"{path} is not on this node ({socket.gethostname()}): moved or deleted, or on a filesystem not mounted "
            f"here at the same path")


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


def check_figure(path: Path, what: str) -> None:
    """Before any work: `path` can be written (`check_output`) and its suffix names a format matplotlib writes."""
    from matplotlib.backend_bases import FigureCanvasBase

    check_output(path, what)
    formats = FigureCanvasBase.get_supported_filetypes()
    if Path(path).suffix.lower().lstrip(".") not in formats:
        raise UserError(f"{what} {str(path)!r}: the suffix names the picture's format; use one of "
                        f"{', '.join('.' + f for f in sorted(formats))}.")


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
    if path.is_symlink() and not path.exists():
        raise UserError(f"{what} {str(path)!r} is a symbolic link to nothing (dangling, or a loop); remove it or give "
                        f"another name.")
    if path.is_dir() and not folder:
        raise UserError(f"{what} {str(path)!r} is a folder; give a file name.")
    if path.exists() and not path.is_dir() and folder:
        raise UserError(f"{what} {str(path)!r} is a file; give a folder.")
    if path.exists() and not path.is_dir() and not path.is_file():
        raise UserError(f"{what} {str(path)!r} is not a regular file (a device, socket or pipe); give a file name.")
    existing = next(p for p in ((path, *path.absolute().parents) if folder else path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"{what} {str(path)!r} cannot be created: {str(existing)!r} is a file, not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK) or (path.is_file() and not os.access(path, os.W_OK)):
        raise UserError(f"{what} {str(path)!r} is not writable (no permission in {str(existing)!r}).")
