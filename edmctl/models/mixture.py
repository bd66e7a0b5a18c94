"""The ideal denoiser of a finite dataset, widened to a Gaussian mixture (EDM Appendix B.3).

One isotropic component of standard deviation `std` sits on each image y_k, all with equal weight. Noised with
σ, component k becomes N(y_k, (std² + σ²) I), so the posterior mean of the clean image is

    w_k(x; σ) = softmax_k(−‖x − y_k‖² / (2(σ² + std²)))
    D(x; σ)   = Σ_k w_k [y_k + std²/(std² + σ²) · (x − y_k)]
              = c·x + (1 − c)·Σ_k w_k y_k,   c = std²/(std² + σ²)   (because Σ_k w_k = 1).

With std = 0 this is the exact denoiser of the empirical distribution; as σ → 0 it returns the nearest image.

The distribution itself is known exactly too: its mean is ȳ = Σ_k y_k / K and its covariance (law of total
covariance) Σ_k (y_k − ȳ)(y_k − ȳ)ᵀ / K + std² I; a sample x belongs most likely to the component of the nearest
y_k (equal weights and stds), which is how a sampler's mode flips are counted (`edmctl.evaluate`).
"""

import torch

_TINY = torch.finfo(torch.float64).tiny


def squared_distances(x: torch.Tensor, images: torch.Tensor, images_sq: torch.Tensor) -> torch.Tensor:
    """‖x_n − y_k‖² for every pair, as ‖x‖² − 2 x·y + ‖y‖² (one matrix product), clamped at 0. Shapes (N, d), (K, d) → (N, K)."""
    x_sq = (x * x).sum(dim=1, keepdim=True)
    return (x_sq - 2.0 * x @ images.T + images_sq[None, :]).clamp_min(0.0)


def mixture_weights(dist_sq: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """w_k = softmax_k(−‖x − y_k‖²/(2 var)), shifted by the nearest distance (log-sum-exp form).

    The shift makes the nearest component's logit exactly 0, so var → 0 gives the one-hot limit instead of 0/0.
    """
    shifted = dist_sq - dist_sq.min(dim=1, keepdim=True).values
    return torch.softmax(-shifted / (2.0 * variance.clamp_min(_TINY))[:, None], dim=1)


class GaussianMixtureDenoiser:
    """D(x; σ) of the equal-weight mixture Σ_k N(y_k, std² I) / K, in float64, for a batch with one σ per image.

    Implements the model interface the samplers call: `sigma_min`, `sigma_max`, `round_sigma`, `label_dim`,
    `img_channels`, `img_resolution`, and `model(x, sigma, class_labels=None)`.
    """

    sigma_min = 0.0
    sigma_max = float("inf")
    label_dim = 0

    def __init__(self, images: torch.Tensor, std: float = 0.0):
        images = torch.as_tensor(images, dtype=torch.float64)
        if images.ndim != 4 or images.shape[0] == 0:
            raise ValueError(f"images must have shape (N, C, H, W) with N >= 1, got {tuple(images.shape)}")
        self.images = images.flatten(1)  # (K, d)
        self.images_sq = (self.images * self.images).sum(dim=1)
        self.std = float(std)
        self.img_channels = images.shape[1]
        self.img_resolution = images.shape[2]
        self.img_shape = tuple(images.shape[1:])

    def round_sigma(self, sigma):
        """The identity: an analytic model accepts every noise level."""
        return torch.as_tensor(sigma, dtype=torch.float64)

    def __call__(self, x: torch.Tensor, sigma, class_labels=None) -> torch.Tensor:
        """The posterior mean E[y | x] at noise level σ (a scalar or one per image)."""
        x = x.to(torch.float64)
        flat = x.flatten(1)
        sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).reshape(-1).expand(flat.shape[0])
        variance = sigma**2 + self.std**2
        images = self.images.to(x.device)
        weights = mixture_weights(squared_distances(flat, images, self.images_sq.to(x.device)), variance)
        c = (self.std**2 / variance.clamp_min(_TINY))[:, None]
        return (c * flat + (1.0 - c) * (weights @ images)).reshape(x.shape)

    def components(self, x: torch.Tensor) -> torch.Tensor:
        """The index k of the most likely component of each x (N, C, H, W): the nearest image y_k."""
        flat = x.to(torch.float64).flatten(1)
        return squared_distances(flat, self.images.to(x.device), self.images_sq.to(x.device)).argmin(dim=1).cpu()

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (d,) and covariance (d, d) of the mixture: ȳ and Σ_k (y_k − ȳ)(y_k − ȳ)ᵀ / K + std² I."""
        mean = self.images.mean(dim=0)
        centred = self.images - mean
        covariance = centred.T @ centred / self.images.shape[0]
        return mean, covariance + self.std**2 * torch.eye(covariance.shape[0], dtype=torch.float64)
