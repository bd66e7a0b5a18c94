"""Fréchet distance (FID) and kernel distance (KID) between two sets of statistics, both clean-fid's own."""

import contextlib
import math
import warnings

import numpy as np

from edmctl.fid.clean import clean_fid
from edmctl.fid.stats import Stats


def _linalg_warning() -> type[Warning]:
    from scipy.linalg import LinAlgWarning

    return LinAlgWarning


def frechet_distance(a: Stats, b: Stats) -> float:
    """d^2 = ||mu_a - mu_b||^2 + Tr(sigma_a + sigma_b - 2 (sigma_a sigma_b)^(1/2))  (Heusel et al. 2017)."""
    with contextlib.redirect_stdout(None), warnings.catch_warnings():  # it prints when it regularises sigma
        warnings.simplefilter("ignore", DeprecationWarning)  # scipy >= 1.16 deprecates sqrtm's `disp`, which it passes
        # A singular sigma is the rule for `pixels` features (digits' corner pixels are always 0); clean-fid then
        # regularises sigma itself when the square root is not finite, so scipy's warning tells the user nothing.
        warnings.simplefilter("ignore", category=_linalg_warning())
        warnings.simplefilter("ignore", RuntimeWarning)  # sqrtm's error estimate divides by |Σ_aΣ_b| = 0 (identical images)
        try:
            d2 = float(clean_fid().frechet_distance(a.mu, a.sigma, b.mu, b.sigma))
        except ValueError:  # sqrtm(Σ_a Σ_b) kept an imaginary part: singular covariances (fewer images than features)
            return frechet_distance_psd(a.mu, a.sigma, b.mu, b.sigma)
    return nonnegative(d2, a.sigma, b.sigma)


def frechet_distance_psd(mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray) -> float:
    """The same d² with Tr((Σ_a Σ_b)^½) = Σ_i √λ_i(Σ_b^½ Σ_a Σ_b^½), a symmetric eigenproblem: real and exact for
    any positive semi-definite covariances, singular ones included (where a square root of Σ_a Σ_b turns complex)."""
    eigenvalues, vectors = np.linalg.eigh(sigma_b)
    root = (vectors * np.sqrt(eigenvalues.clip(min=0))) @ vectors.T
    cross = np.sqrt(np.linalg.eigvalsh(root @ sigma_a @ root).clip(min=0)).sum()
    return nonnegative(float(((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2 * cross), sigma_a, sigma_b)


def rounding(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """How far below 0 floating point can carry d² = ||μ_a - μ_b||² + Tr(Σ_a + Σ_b - 2 (Σ_a Σ_b)^½) when it is 0
    or nearly so: Tr((Σ_a Σ_b)^½) = Σ_i √λ_i over the D eigenvalues of Σ_a Σ_b, and an eigenvalue that is 0 — every
    covariance of fewer images than features is singular — comes out as ±ε‖Σ_a‖‖Σ_b‖, whose square root adds up to
    √(ε‖Σ_a‖‖Σ_b‖) ≤ √(ε Tr Σ_a Tr Σ_b) (a covariance's norm is at most its trace) to the trace. Twice that, D times."""
    dim, eps = sigma_a.shape[0], np.finfo(np.float64).eps
    return 2 * dim * math.sqrt(eps * max(np.trace(sigma_a), 0.0) * max(np.trace(sigma_b), 0.0))


def nonnegative(d2: float, sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """d² as the distance it is, ≥ 0: a negative of rounding size (`rounding`: 3 images of 64 pixels measured
    against themselves gave -0.094 where d² = 0) is 0; a larger negative is a bug, never a result to report.
    Not-a-number passes through (`pipeline.compare` names its cause)."""
    if not d2 < 0:
        return d2
    if -d2 <= rounding(sigma_a, sigma_b):
        return 0.0
    raise ArithmeticError(f"the Fréchet distance came out {d2:.6g}, below 0 by more than floating point rounding "
                          f"({rounding(sigma_a, sigma_b):.3g}) can explain")


@contextlib.contextmanager
def _seeded_numpy(seed: int):
    """clean-fid's KID draws subsets from numpy's global generator: seed it, then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def kernel_distance(a: Stats, b: Stats, seed: int = 0, scale: float = 1.0) -> float | None:
    """KID (Bińkowski et al. 2018) by clean-fid on the two KID reservoirs, the features times `scale`; None when
    either side has fewer than 2.

    KID is the unbiased MMD² with the kernel k(x, y) = (xᵀy/d + 1)³, d the feature dimension, a kernel made for
    features of order one (Inception's pool3); `scale` brings other features there (`detectors.kid_scale`).
    clean-fid averages 100 subsets of min(|a|, |b|, 1000) features; drawing those from a uniform reservoir
    instead of the full set is still a uniform draw, so the estimate keeps its meaning.
    """
    if a.feats is None or b.feats is None or min(len(a.feats), len(b.feats)) < 2:
        return None
    with _seeded_numpy(seed):
        return float(clean_fid().kernel_distance(a.feats * scale, b.feats * scale))
