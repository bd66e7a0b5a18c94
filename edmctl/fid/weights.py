"""The Inception weights file clean-fid uses: where it is looked for, how it is downloaded, and its sha256.

clean-fid 0.1.35 (`cleanfid.downloads_helper.inception_url`) downloads the TorchScript port of the TF
Inception-v3 (2015-12-05) that StyleGAN2-ADA and EDM use for their FIDs. A TorchScript file is code, so edmctl
looks for it only in `paths.cache_dir()` (`$EDMCTL_CACHE`, a folder the user owns; never a world-writable one
such as clean-fid's `/tmp`), and loads it only when its sha256 is `INCEPTION_SHA256`. A download goes into the
cache through a temporary file created exclusively (`paths.atomic_open`) and is renamed only once complete,
of that sha256, and loadable.

INCEPTION_SHA256 is the digest k-diffusion pins for this URL (crowsonkb/k-diffusion,
`k_diffusion/evaluation.py`, `InceptionV3FeatureExtractor`); independent projects that verify their copy of
the NVIDIA file record the same value.
"""

import json
import urllib.request
from pathlib import Path

from edmctl import paths
from edmctl.errors import UserError

INCEPTION_FILE = "inception-2015-12-05.pt"
INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
INCEPTION_SHA256 = "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4"
DOWNLOAD_TIMEOUT_S = 20.0
_SHA_CACHE_FILE = "sha256.json"


def inception_path() -> Path:
    """Where the Inception file is looked for and downloaded to: `$EDMCTL_CACHE/inception-2015-12-05.pt`."""
    return paths.cache_dir() / INCEPTION_FILE


def missing_weights_message(reason: str) -> str:
    """One paragraph: which file, where it comes from, where to put it."""
    return (
        f"The Inception weights file {INCEPTION_FILE} (the TorchScript TF-Inception that clean-fid and the EDM "
        f"paper use for FID) is not in {paths.cache_dir()}, and downloading it failed ({reason}); download it from "
        f"{INCEPTION_URL} on a machine with internet access and put it at {inception_path()} "
        f"(or set EDMCTL_CACHE to the folder that holds it), or pick another detector with --detector pixels "
        f"or --detector PATH.pt."
    )


def _check_loadable(path: Path) -> None:
    import torch

    torch.jit.load(str(path), map_location="cpu")


def download(url: str, dest: Path, sha256: str | None = None, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download `url` to `dest` through a temporary file in its folder (created exclusively, never through a
    planted link), renamed only when complete, of the expected `sha256` (when given) and loadable by TorchScript."""
    with paths.atomic_open(dest) as f:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            while chunk := response.read(1 << 20):
                f.write(chunk)
        f.flush()
        if sha256 is not None and (got := paths.file_sha256(Path(f.name))) != sha256:
            raise ValueError(f"the download has sha256 {got}, not {sha256}")
        _check_loadable(Path(f.name))
    return dest


def check_known(path: Path) -> Path:
    """`path` when its sha256 is the known Inception digest; a UserError saying what to do otherwise (it is code:
    an unknown file is never loaded)."""
    digest = file_sha256(path)
    if digest != INCEPTION_SHA256:
        raise UserError(f"The Inception weights file {path} has sha256 {digest}, not the known {INCEPTION_SHA256} of "
                        f"{INCEPTION_URL}; delete it (it is downloaded again) or put the right file there.")
    return path


def inception_weights(allow_download: bool = True) -> Path:
    """The path of the Inception weights, checked against `INCEPTION_SHA256`: found in the cache, or downloaded
    into it. Raises `UserError` with the whole story when it is missing and cannot be downloaded."""
    path = inception_path()
    if path.is_file():
        return check_known(path)
    if not allow_download:
        raise UserError(missing_weights_message("downloads are disabled"))
    try:
        return download(INCEPTION_URL, path, INCEPTION_SHA256)
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
