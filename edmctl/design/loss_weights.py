"""Loss weights λ(σ) (EDM Table 1 "Loss weighting"; P2 of Choi et al. 2022; min-SNR of Hang et al. 2023).

Each is a function of σ; the constants it needs are keyword-only arguments named as recipe fields
(`precond.sigma_data`, `training.p2_k`, …), so the recipe can tell which ones a choice needs.
"""

import torch


def inv_sigma2(sigma):
    """λ(σ) = 1/σ² (Table 1, VP and VE)."""
    return 1 / sigma**2


def edm(sigma, *, sigma_data: float):
    """λ(σ) = (σ² + σ_data²)/(σ·σ_data)² = 1/c_out² (Table 1, EDM; Eq. 8)."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def p2(sigma, *, p2_k: float, p2_gamma: float):
    """P2 weighting (Choi et al. 2022): λ(σ) = σ⁻²·(k + SNR)^(−γ) with SNR = σ⁻²."""
    snr = 1 / sigma**2
    return snr * (p2_k + snr) ** (-p2_gamma)


def min_snr(sigma, *, snr_gamma: float):
    """min-SNR-γ for a D (x_0) target (Hang et al. 2023): λ(σ) = min(σ⁻², γ)."""
    return torch.clamp(1 / sigma**2, max=snr_gamma)


def soft_min_snr(sigma, *, sigma_data: float):
    """Soft min-SNR: λ(σ) = 1/(σ² + σ_data²)."""
    return 1 / (sigma**2 + sigma_data**2)


LOSS_WEIGHTS = {"inv-sigma2": inv_sigma2, "edm": edm, "p2": p2, "min-snr": min_snr, "soft-min-snr": soft_min_snr}
