"""Gaussian data N(μ, diag(s²)): the one distribution whose denoiser and probability-flow ODE are closed form.

Noised with σ, the data is N(μ, diag(s² + σ²)), so (per dimension)

    D(x; σ) = μ + s²/(s² + σ²) · (x − μ)                                  (posterior mean)

and the probability-flow ODE dx/dσ = (x − D(x; σ))/σ (EDM Eq. 4 with σ(t) = t, s(t) = 1) becomes
dx/dσ = σ/(s² + σ²) · (x − μ), whose solution from x_0 at σ_0 is

    x(σ) = μ + sqrt(s² + σ²)/sqrt(s² + σ_0²) · (x_0 − μ).

The convergence-order tests integrate this ODE numerically and compare with the exact endpoint x(0).
"""

import torch


class GaussianDataDenoiser:
    """The exact denoiser of N(μ, diag(s²)) with `mean` μ and `std` s of shape (C, H, W); same interface as every model."""

    sigma_min = 0.0
    sigma_max = float("inf")
    label_dim = 0

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.std = torch.as_tensor(std, dtype=torch.float64)
        if self.mean.ndim != 3 or self.mean.shape != self.std.shape:
            raise ValueError(f"mean and std must share one (C, H, W) shape, got {tuple(self.mean.shape)} and {tuple(self.std.shape)}")
        self.img_channels = self.mean.shape[0]
        self.img_resolution = self.mean.shape[1]
        self.img_shape = tuple(self.mean.shape)

    def round_sigma(self, sigma):
        """The identity: an analytic model accepts every noise level."""
        return torch.as_tensor(sigma, dtype=torch.float64)

    def _per_image(self, sigma, x: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).reshape(-1)
        return sigma.expand(x.shape[0]).reshape(-1, 1, 1, 1)

    def __call__(self, x: torch.Tensor, sigma, class_labels=None) -> torch.Tensor:
        """D(x; σ) = μ + s²/(s² + σ²)(x − μ)."""
        x = x.to(torch.float64)
        sigma = self._per_image(sigma, x)
        var = self.std.to(x.device) ** 2
        mean = self.mean.to(x.device)
        return mean + var / (var + sigma**2) * (x - mean)

    def ode_solution(self, x0: torch.Tensor, sigma0, sigma=0.0) -> torch.Tensor:
        """The exact probability-flow ODE state at `sigma` starting from x0 at sigma0 (σ(t) = t, s(t) = 1)."""
        x0 = x0.to(torch.float64)
        sigma0, sigma = self._per_image(sigma0, x0), self._per_image(sigma, x0)
        var = self.std.to(x0.device) ** 2
        mean = self.mean.to(x0.device)
        return mean + torch.sqrt(var + sigma**2) / torch.sqrt(var + sigma0**2) * (x0 - mean)

    def components(self, x: torch.Tensor) -> torch.Tensor:
        """Component index of each x: always 0 (Gaussian data has one component)."""
        return torch.zeros(x.shape[0], dtype=torch.long)

    def moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean μ (d,) and covariance diag(s²) (d, d) of the data, flattened."""
        return self.mean.flatten(), torch.diag(self.std.flatten() ** 2)
