"""The Inception weights file clean-fid uses: where it is looked for, how it is downloaded, and its sha256.

clean-fid 0.1.35 (`cleanfid.downloads_helper.inception_url`) downloads the TorchScript port of the TF
Inception-v3 (2015-12-05) that StyleGAN2-ADA and EDM use for their FIDs, and keeps it in `/tmp`
(`cleanfid.features.feature_extractor`). edmctl looks in `paths.cache_dir()` first, then where clean-fid keeps
it, and downloads into `paths.cache_dir()` through a temporary name, renamed only once complete and loadable.
"""

import json
import os
import platform
import urllib.request
from pathlib import Path

from edmctl import paths
from edmctl.errors import UserError

INCEPTION_FILE = "inception-2015-12-05.pt"
INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
DOWNLOAD_TIMEOUT_S = 20.0
_SHA_CACHE_FILE = "sha256.json"


def cleanfid_dirs() -> list[Path]:
    """Where clean-fid itself keeps the Inception file (`/tmp`, or `./` on Windows)."""
    return [Path("./") if platform.system() == "Windows" else Path("/tmp")]


def candidate_paths() -> list[Path]:
    """Every place the Inception file is looked for, in order: edmctl's cache, then clean-fid's folder."""
    return [folder / INCEPTION_FILE for folder in [paths.cache_dir(), *cleanfid_dirs()]]


def missing_weights_message(reason: str) -> str:
    """One paragraph: which file, where it comes from, where to put it."""
    where = " or ".join(str(p) for p in candidate_paths())
    return (
        f"The Inception weights file {INCEPTION_FILE} (the TorchScript TF-Inception that clean-fid and the EDM "
        f"paper use for FID) is not in {where}, and downloading it failed ({reason}); download it from "
        f"{INCEPTION_URL} on a machine with internet access and put it at {paths.cache_dir() / INCEPTION_FILE} "
        f"(or set EDMCTL_CACHE to the folder that holds it), or pick another detector with --detector pixels "
        f"or --detector PATH.pt."
    )


def _check_loadable(path: Path) -> None:
    import torch

    torch.jit.load(str(path), map_location="cpu")


def download(url: str, dest: Path, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download `url` to `dest` through `.dest.partPID`, renamed only when complete and loadable by TorchScript."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part{os.getpid()}")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(part, "wb") as f:
            while chunk := response.read(1 << 20):
                f.write(chunk)
        _check_loadable(part)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def inception_weights(allow_download: bool = True) -> Path:
    """The path of the Inception weights: found in a candidate folder, or downloaded into the cache.

    Raises `UserError` with the whole story when it is missing and cannot be downloaded.
    """
    for path in candidate_paths():
        if path.is_file():
            return path
    if not allow_download:
        raise UserError(missing_weights_message("downloads are disabled"))
    try:
        return download(INCEPTION_URL, paths.cache_dir() / INCEPTION_FILE)
    except Exception as e:  # no network, HTTP error, truncated or corrupt file: all mean "put it there yourself"
        raise UserError(missing_weights_message(f"{type(e).__name__}: {e}")) from None


def _sha_cache_path() -> Path:
    return paths.cache_dir() / _SHA_CACHE_FILE


def _read_sha_cache() -> dict:
    try:
        return json.loads(_sha_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, cached in `cache_dir()/sha256.json` under its resolved path, mtime and size."""
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}|{st.st_mtime_ns}|{st.st_size}"
    cache = _read_sha_cache()
    if key in cache:
        return cache[key]
    cache = {k: v for k, v in cache.items() if not k.startswith(f"{path}|")}
    cache[key] = paths.file_sha256(path)
    try:
        paths.atomic_write_bytes(_sha_cache_path(), json.dumps(cache, indent=1).encode())
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return cache[key]
