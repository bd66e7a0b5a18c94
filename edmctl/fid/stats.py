"""Feature statistics (mu, sigma) with float64 streaming accumulation, a bounded KID reservoir, and npz files.

The npz layout is EDM's reference files' (`cifar10-32x32.npz`: `mu` float64 (D,), `sigma` float64 (D, D)),
so those load as references; edmctl adds `num_images`, the detector description and `feats` (the KID reservoir).
"""

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edmctl import paths
from edmctl.errors import UserError

KID_RESERVOIR = 2000  # features kept for KID: a uniform random subset (reservoir sampling) of all the images
META_KEYS = ("detector", "detector_kind", "protocol", "detector_sha256")


@dataclass
class Stats:
    """Gaussian statistics of detector features: mean `mu` (D,), covariance `sigma` (D, D), both float64."""

    mu: np.ndarray
    sigma: np.ndarray
    num_images: int | None = None
    feats: np.ndarray | None = None  # KID reservoir (K, D) float64, None in EDM's reference files
    meta: dict = field(default_factory=dict)  # detector, detector_kind, protocol, detector_sha256

    @property
    def dim(self) -> int:
        return int(self.mu.shape[0])


class StatsAccumulator:
    """Streaming mean and covariance in float64: sums of (x - c) and (x - c)(x - c)^T, c = first batch's mean.

    The shift c makes the one-pass formula as accurate as two passes for features far from 0; the covariance is
    the unbiased one, as `np.cov(feats, rowvar=False)` in clean-fid.
    """

    def __init__(self, kid_reservoir: int = KID_RESERVOIR, seed: int = 0):
        self.n = 0
        self.shift = self.s1 = self.s2 = None
        self.reservoir: list[np.ndarray] = []
        self.kid_reservoir = kid_reservoir
        self.rng = np.random.default_rng(seed)

    def add(self, feats: np.ndarray) -> None:
        """Add a batch of features (B, D)."""
        feats = np.asarray(feats, dtype=np.float64)
        if self.shift is None:
            self.shift = feats.mean(axis=0)
            self.s1 = np.zeros_like(self.shift)
            self.s2 = np.zeros((feats.shape[1], feats.shape[1]))
        y = feats - self.shift
        self.s1 += y.sum(axis=0)
        self.s2 += y.T @ y
        self._sample(feats)
        self.n += len(feats)

    def _sample(self, feats: np.ndarray) -> None:
        """Reservoir sampling (Vitter's Algorithm R): after n images, each is kept with probability K/n."""
        k = self.kid_reservoir
        for i, x in enumerate(feats):
            seen = self.n + i  # images before this one
            if seen < k:
                self.reservoir.append(x.copy())
            else:
                j = int(self.rng.integers(0, seen + 1))
                if j < k:
                    self.reservoir[j] = x.copy()

    def finish(self, meta: dict | None = None) -> Stats:
        """mu = c + s1/n, sigma = (s2 - s1 s1^T / n) / (n - 1)."""
        if self.n < 2:
            raise UserError(f"FID statistics need at least 2 images, got {self.n}.")
        mu = self.shift + self.s1 / self.n
        sigma = (self.s2 - np.outer(self.s1, self.s1) / self.n) / (self.n - 1)
        feats = np.stack(self.reservoir) if self.reservoir else None
        return Stats(mu, (sigma + sigma.T) / 2, self.n, feats, dict(meta or {}))


def save_stats(path: str | Path, stats: Stats) -> Path:
    """Write `stats` as npz through a temporary name (EDM layout plus edmctl's extra keys)."""
    arrays = {"mu": stats.mu, "sigma": stats.sigma}
    if stats.num_images is not None:
        arrays["num_images"] = np.int64(stats.num_images)
    if stats.feats is not None:
        arrays["feats"] = stats.feats
    arrays.update({k: np.str_("" if stats.meta.get(k) is None else str(stats.meta[k])) for k in META_KEYS})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = Path(path)
    paths.atomic_write_bytes(path, buf.getvalue())
    return path


def load_stats(path: str | Path) -> Stats:
    """Read a stats npz: edmctl's, or EDM's reference layout (just `mu`, `sigma`); UserError if it is neither."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Reference statistics file {path} does not exist; make one with `edmctl fid ref DATA --out {path}`.")
    data = paths.read_npz(path, "Reference statistics file")
    if "mu" not in data or "sigma" not in data:
        raise UserError(f"Reference statistics file {path} lacks the keys 'mu' and 'sigma' (it has {sorted(data)}).")
    mu, sigma = _real(data, "mu", path), _real(data, "sigma", path)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise UserError(f"Reference statistics file {path} has mu of shape {mu.shape} and sigma of shape {sigma.shape}; expected (D,) and (D, D).")
    check_covariance(sigma, f"Reference statistics file {path}")
    meta = {k: str(data[k]) or None for k in META_KEYS if k in data}
    num = data.get("num_images")
    if num is not None and not (num.shape == () and np.issubdtype(num.dtype, np.integer) and num >= 2):
        raise UserError(f"Reference statistics file {path}: num_images must be an integer >= 2, got {num!r}.")
    feats = _real(data, "feats", path) if "feats" in data else None
    if feats is not None and (feats.ndim != 2 or feats.shape[1] != mu.shape[0]):
        raise UserError(f"Reference statistics file {path} has feats of shape {feats.shape}; expected (K, {mu.shape[0]}).")
    return Stats(mu, sigma, None if num is None else int(num), feats, meta)


def _real(data: dict, key: str, path: Path) -> np.ndarray:
    """`data[key]` as float64, when it is an array of finite real numbers."""
    array = data[key]
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise UserError(f"Reference statistics file {path}: {key} must hold real numbers, got dtype {array.dtype}.")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise UserError(f"Reference statistics file {path}: {key} holds non-finite values (NaN or inf).")
    return array


def check_covariance(sigma: np.ndarray, where: str) -> None:
    """A covariance is symmetric and positive semi-definite (up to rounding: a Cholesky factor of sigma + εI
    exists for ε a millionth of its mean variance)."""
    scale = float(np.abs(sigma).max()) if sigma.size else 0.0
    if np.abs(sigma - sigma.T).max(initial=0.0) > 1e-6 * scale:
        raise UserError(f"{where}: sigma is not symmetric, so it is not a covariance matrix.")
    eps = 1e-6 * max(float(np.trace(sigma)) / max(len(sigma), 1), np.finfo(np.float64).tiny)
    if (np.diag(sigma) < 0).any() or not _has_cholesky(sigma + eps * np.eye(len(sigma))):
        raise UserError(f"{where}: sigma is not positive semi-definite, so it is not a covariance matrix.")


def _has_cholesky(matrix: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return False
    return True


def check_compatible(ref: Stats, ref_path: str | Path, meta: dict, dim: int) -> None:
    """UserError unless features of size `dim` made as `meta` describes can be compared with `ref`."""
    if ref.dim != dim:
        raise UserError(
            f"Reference statistics {ref_path} have {ref.dim}-dimensional features but detector {meta.get('detector')} "
            f"gives {dim}; use statistics made with the same detector (`edmctl fid ref ... --detector ...`)."
        )
    for key in ("detector_kind", "protocol", "detector_sha256"):
        theirs, ours = ref.meta.get(key), meta.get(key)
        if theirs and ours and theirs != ours:
            raise UserError(f"Reference statistics {ref_path} were made with {key}={theirs} but this measurement uses {ours}; pass the matching --detector/--protocol or remake the reference.")
