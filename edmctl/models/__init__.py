"""Denoisers that need no training: the ideal denoiser / Gaussian mixture on a dataset, and Gaussian data.

Every model offers `sigma_min`, `sigma_max`, `round_sigma(sigma)`, `label_dim`, `img_channels`, `img_resolution`
and `model(x, sigma, class_labels=None) -> denoised`, the interface `edmctl.design.sampler.run_sampler` calls.
Their distribution is known in closed form, so each also offers `moments()` (exact mean and covariance) and
`components(x)` (the most likely component of each sample), which `edmctl.evaluate` measures samplers with.
"""

from edmctl.models.gaussian import GaussianDataDenoiser
from edmctl.models.loading import MODEL_SOURCES, load_model
from edmctl.models.mixture import GaussianMixtureDenoiser

__all__ = ["GaussianDataDenoiser", "GaussianMixtureDenoiser", "MODEL_SOURCES", "load_model"]
