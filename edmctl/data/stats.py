"""The data's standard deviation in model range, and the check against the recipe's sigma_data.

EDM's preconditioning (Eq. 7, Table 1) scales the network's input and skip connection by sigma_data, the
standard deviation of the training data; 0.5 fits natural images in [-1, 1]. A mismatch is not an error but
deserves a warning.
"""

import torch

from edmctl.data.dataset import ImageDataset, to_model_range

SIGMA_DATA_TOLERANCE = 0.25
BATCH = 1024


def measure_std(dataset: ImageDataset, max_images: int = 10000) -> float:
    """Standard deviation of every pixel of up to `max_images` images (evenly spaced through the dataset),
    after `to_model_range`. Accumulated in float64."""
    count = min(len(dataset), max_images)
    if count == 0:
        raise ValueError("cannot measure the standard deviation of an empty dataset")
    indices = torch.linspace(0, len(dataset) - 1, count, dtype=torch.float64).round().long()
    total = total_sq = 0.0
    for chunk in indices.split(BATCH):
        x = to_model_range(dataset.get_batch(chunk)[0]).double()
        total += float(x.sum())
        total_sq += float(x.square().sum())
    n = count * dataset.channels * dataset.resolution**2
    mean = total / n
    return max(total_sq / n - mean * mean, 0.0) ** 0.5


def check_sigma_data(std: float, sigma_data: float, tolerance: float = SIGMA_DATA_TOLERANCE) -> str | None:
    """A warning when the measured std differs from sigma_data by more than `tolerance` (relative), else None."""
    if abs(std - sigma_data) <= tolerance * sigma_data:
        return None
    return (f"the data's standard deviation is {std:.3f} in model range but the recipe's sigma_data is "
            f"{sigma_data:g} ({abs(std - sigma_data) / sigma_data:.0%} apart); EDM's preconditioning (Eq. 7) "
            f"assumes they match, consider sigma_data = {std:.2f}.")
